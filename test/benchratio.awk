# Medians per benchmark and metric over -count runs of `go test -bench`
# output, and the ratios the performance goals are stated in.
# Usage: awk -f test/benchratio.awk test/results/bench.txt
function median(key,    n, i, j, t, a) {
	n = cnt[key]
	for (i = 1; i <= n; i++) a[i] = vals[key, i]
	for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	if (n % 2) return a[(n + 1) / 2]
	return (a[n / 2] + a[n / 2 + 1]) / 2
}
/^Benchmark/ {
	name = $1
	sub(/-[0-9]+$/, "", name)
	if (!(name in seen)) { seen[name] = 1; order[++nb] = name }
	for (i = 3; i < NF; i += 2) {
		key = name SUBSEP $(i + 1)
		if (!(key in cnt)) { units[name] = units[name] " " $(i + 1) }
		vals[key, ++cnt[key]] = $i
	}
}
function m(name, unit) { return ((name SUBSEP unit) in cnt) ? median(name SUBSEP unit) : -1 }
END {
	print "== medians"
	for (b = 1; b <= nb; b++) {
		name = order[b]; line = sprintf("%-58s", name)
		nu = split(units[name], us, " ")
		for (u = 1; u <= nu; u++) if (us[u] != "B/op" && us[u] != "allocs/op") line = line sprintf("  %g %s", m(name, us[u]), us[u])
		print line
	}
	print ""
	print "== ratios (goal in brackets)"
	r = m("BenchmarkInterleaved", "ingest/hello")
	if (r > 0) printf "ingest handler vs hello-world, interleaved in one loop: %.2fx  [>= 0.5x]\n", r
	h = m("BenchmarkHelloWorld", "ns/op"); i = m("BenchmarkIngestDecodeValidate", "ns/op")
	if (h > 0 && i > 0) printf "ingest handler vs hello-world, separate benchmarks:   %.2fx  [>= 0.5x]\n", h / i
	f = m("BenchmarkFleet10k/local/unchanged", "p50-ms")
	if (f >= 0) printf "fleet read 10k from local cache, p50: %.3f ms  [< 5 ms]\n", f
	f = m("BenchmarkFleet10k/redis/unchanged", "p50-ms")
	if (f >= 0) printf "fleet read 10k from redis cache (unchanged), p50: %.3f ms  [< 5 ms]\n", f
	f = m("BenchmarkFleet10k/redis/changed", "p50-ms")
	if (f >= 0) printf "fleet read 10k from redis after a change, p50: %.3f ms\n", f
	f1 = m("BenchmarkFleet1k/redis/changed", "p50-ms")
	if (f1 >= 0 && f > 0) printf "fleet read after a change, 10k vs 1k: %.1fx the time for 10x the drones\n", f / f1
	c = m("BenchmarkPipeline", "cpu-us/report")
	if (c > 0) printf "whole pipeline in process at 2,500 reports/s, CPU a report: %.1f us  [<= 250 us]\n", c
	e = m("BenchmarkEndToEnd", "events/s"); g = m("BenchmarkIngress", "events/s")
	if (e > 0 && g > 0) printf "broker end-to-end vs ingress alone: %.2fx (%g vs %g events/s)\n", e / g, e, g
}
