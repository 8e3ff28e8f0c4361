# Demo part: hpcmon-gpu-exporter on 127.0.0.1:19835, reading GPU → job mapping files from
# $RUN/gpustat (what contrib/prolog.sh writes on a GPU node). On a machine without an NVIDIA
# GPU it serves gpu_nvml_up 0 (reason library_not_found / driver_not_loaded) and its own
# metrics, and keeps retrying NVML in the background.
# Sourced by scripts/demo.sh (see its header for ROOT, BIN, RUN and the demo_* functions).
mkdir -p "$RUN/gpustat"
demo_spawn gpu-exporter "$BIN/hpcmon-gpu-exporter" \
  --web.listen-address=127.0.0.1:19835 \
  --gpu.job-map-dir="$RUN/gpustat"
demo_scrape gpu 127.0.0.1:19835
demo_url "gpu exporter" "http://127.0.0.1:19835/metrics"
demo_wait_http http://127.0.0.1:19835/-/ready gpu-exporter 20
