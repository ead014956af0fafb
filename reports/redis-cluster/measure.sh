#!/bin/bash
# Measures 1 node memory, 1/2/3 nodes on Redis, for socketio, sse, poll@1s.
set -u
T=${T:-target/release}
R=${R:-reports/redis-cluster}
mkdir -p $R
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
RP=$(free_port)
redis-server --port $RP --bind 127.0.0.1 --save '' --appendonly no >${LOGS:-/tmp}/redis.log 2>&1 &
RPID=$!
sleep 1
redis_cpu() { awk '{print $14+$15}' /proc/$RPID/stat; }
run_cfg() { # name nodes redis?
  local name=$1 n=$2 useredis=$3 pids=() urls=()
  for i in $(seq 1 $n); do
    p=$(free_port)
    if [ "$useredis" = 1 ]; then
      $T/chat-server --addr 127.0.0.1:$p --redis redis://127.0.0.1:$RP --redis-key $name >${LOGS:-/tmp}/$name-$i.log 2>&1 &
    else
      $T/chat-server --addr 127.0.0.1:$p >${LOGS:-/tmp}/$name-$i.log 2>&1 &
    fi
    pids+=($!); urls+=("http://127.0.0.1:$p")
  done
  sleep 1.5
  local list; list=$(IFS=,; echo "${urls[*]}")
  local c0; c0=$(redis_cpu)
  $T/loadgen compare --target "$list" --strategies socketio,sse,poll@1s \
    --clients 600 --rate 10 --duration 10s --warmup 3s --out $R/$name > ${LOGS:-/tmp}/$name.out 2>&1
  echo "$name rc=$? redis_cpu_ticks=$(( $(redis_cpu) - c0 ))" | tee -a ${LOGS:-/tmp}/redis-cpu.txt
  kill "${pids[@]}"; wait "${pids[@]}" 2>/dev/null
}
run_cfg memory-1 1 0
run_cfg redis-1 1 1
run_cfg redis-2 2 1
run_cfg redis-3 3 1
kill $RPID
$T/loadgen report $R/memory-1 $R/redis-1 $R/redis-2 $R/redis-3 --out $R/side-by-side > ${LOGS:-/tmp}/report.out 2>&1
echo done
