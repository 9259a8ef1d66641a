#!/bin/bash
# Per-seed final greedy evaluation of the demo settings over 16 seeds, under seed shifts and one CPU core.
# Usage: bash benchmarks/demo_margins.sh   (writes runs under $OUT, default /tmp/demo-margins)
cd "$(dirname "$0")/.."
mkdir -p "${OUT:-/tmp/demo-margins}"
for spec in "0:" "100:" "1000:" "0:taskset -c 0"; do
  off=${spec%%:*}; pre=${spec#*:}
  seeds=$(seq $off $((off+15)) | tr '\n' ' ')
  for algo in a2c soft-q; do
    dir=${OUT:-/tmp/demo-margins}/$algo-$off-$( [ -n "$pre" ] && echo t1 || echo all )
    rm -rf $dir
    start=$(date +%s)
    $pre .venv/bin/softeq train --env CartPole-v1 --backend gymnax --driver jit --algo $algo --seeds $seeds --total-steps 450000 --eval-every 0 --eval-episodes 10 --run-dir $dir --no-progress > $dir.log 2>&1
    python3 -c "
import json,sys; d=json.load(open('$dir/summary.json'))
v=[d['seeds'][k]['final_eval_return'] for k in sorted(d['seeds'], key=int)]
print('$algo', 'offset=$off', '$pre', 'min=%.1f'%min(v), 'below475=%d'%sum(x<475 for x in v), ' '.join('%.0f'%x for x in v), 'wall=%ds'%($(date +%s)-$start))"
  done
done
