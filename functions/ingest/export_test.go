package function

// DecodeReportsForTest exposes the parser to the external test package's
// benchmarks and fuzz test.
var DecodeReportsForTest = decodeReports
