#!/bin/sh
# The image's entry point: `train` or `serve`, as SageMaker runs them. exec keeps the job
# process ID 1, so `docker stop` and SageMaker's SIGTERM reach it.
#
# CUDA forward compatibility, as AWS's own images do it: when the image carries NVIDIA's
# cuda-compat libraries in /usr/local/cuda/compat and the host's driver is older than they are,
# they go first on the library path, so that CUDA 13 runs on an older datacenter driver.
compat=/usr/local/cuda/compat
if [ -e "$compat/libcuda.so.1" ] && [ -r /proc/driver/nvidia/version ]; then
  host=$(sed -n 's/.*Kernel Module[^0-9]*\([0-9][0-9.]*\).*/\1/p' /proc/driver/nvidia/version)
  ours=$(basename "$(readlink -f "$compat/libcuda.so.1")" | sed 's/^libcuda\.so\.//')
  oldest=$(printf '%s\n%s\n' "$host" "$ours" | sort -V | head -n 1)
  if [ -n "$host" ] && [ "$host" != "$ours" ] && [ "$oldest" = "$host" ]; then
    echo "driver $host is older than CUDA compat $ours: using $compat" >&2
    export LD_LIBRARY_PATH="$compat${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
fi
exec python -m container "$@"
