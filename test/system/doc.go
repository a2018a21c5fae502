// Package system holds the tests of Dronetrack as a whole on one machine:
// each starts the runtime of infra/local (local.Start) or the dronetrack
// command line (cli.Run) and drives it over HTTP, in a browser (chromedp),
// through faults (functions cut, Redis and Firestore restarted, a full disk)
// and in soaks; BenchmarkPipeline measures the CPU per report of the whole
// pipeline. It has no code of its own besides these tests.
package system
