#!/usr/bin/env bash
# The GPU figures of issue 15 on a lent NVIDIA machine (device tool, kind nvidia-h200), in one run
# that builds nothing there. That machine has no Deno and no Vulkan loader, so both travel with the
# working tree. Prepare once, here, in the repository root (ignored folders, ~35 MiB in all):
#
#   echo /.gl/ >> .git/info/exclude; echo /.deno/ >> .git/info/exclude
#   mkdir -p .gl .deno /tmp/amd64/partial
#   o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
#   apt-get $o update && (cd .gl && apt-get $o download libvulkan1)
#   xz -T2 -6 -c "$(readlink -f "$(command -v deno)")" > .deno/deno.xz
#
# Then: run(command="bash bench/webgpu_h200.sh", carry=[".gl", ".deno"], timeout_s=540).
# Everything prints to stdout and lands in $OUT/webgpu_figures.json.
set -u
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -e /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
xz -d -c .deno/deno.xz > /tmp/deno && chmod +x /tmp/deno
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
/tmp/deno --version | head -1
# No config and no lock: the figures need only the library, never the npm packages.
/tmp/deno run --no-config --no-lock --allow-all bench/webgpu_figures.ts --json "${OUT:-/tmp}/webgpu_figures.json" 2>&1 |
  grep -v XDG_RUNTIME_DIR
