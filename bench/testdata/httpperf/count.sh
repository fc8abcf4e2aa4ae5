#!/bin/bash
# count.sh BINARY BENCHREGEX -> instructions per op: (Ir(N2)-Ir(N1))/(N2-N1)
bin=$1; re=$2; n1=${N1:-30000}; n2=${N2:-130000}
ir() {
  valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null $bin -test.run '^$' -test.bench "$re" -test.benchtime ${1}x 2>&1 | awk '/I *refs:/ {gsub(",","",$4); print $4}'
}
a=$(ir $n1); b=$(ir $n2)
echo "$re $a $b $(( (b-a)/(n2-n1) ))"
