#!/bin/bash
# tog.sh BIN REGEX N -> instructions inside handler.ServeHTTP per request (callgrind, GOGC=off)
out=/tmp/hp/tog.$(basename $1).$RANDOM
GOGC=off GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind --callgrind-out-file=$out --toggle-collect='github.com/ratekit/ratekit/httplimit.(*handler).ServeHTTP' $1 -test.run '^$' -test.bench "$2" -test.benchtime ${3}x >/dev/null 2>&1
tot=$(grep -m1 '^totals:\|^summary:' $out | awk '{print $2}')
echo "$(basename $1) $2 $(( tot / ($3+1) ))"
rm -f $out
