#!/bin/bash
# slbench: redisstore sliding log, old (f479606, 4455712^1) against new (4455712).
# /tmp/slbench/{old,new}.test are `go test -c` of redisstore at each commit.
# Alternates the binaries in ABBA order, 15 rounds, each its own redis-server.
cd /work/wt/slbench/redisstore
out=/work/wt/slbench/bench/testdata/issue17
D='^BenchmarkDecision$/^ratekit$/^(tokenbucket|slidinglog)$/^clients=(1|16)$'
S='^BenchmarkSlidingLogScript$'
: > $out/slbench-old.txt; : > $out/slbench-new.txt; : > $out/slbench-load.txt
for r in $(seq 1 15); do
  if (( r % 2 )); then order="old new"; else order="new old"; fi
  for v in $order; do
    echo "round $r $v $(date -u +%T) $(cat /proc/loadavg)" >> $out/slbench-load.txt
    /tmp/slbench/$v.test -test.run '^$' -test.bench "$D" -test.benchtime 5000x -test.benchmem 2>&1 | grep -v '^PASS' >> $out/slbench-$v.txt
    /tmp/slbench/$v.test -test.run '^$' -test.bench "$S" -test.benchtime 5000x 2>&1 | grep '^Benchmark' >> $out/slbench-$v.txt
  done
done
echo "done $(date -u +%T) $(cat /proc/loadavg)" >> $out/slbench-load.txt
