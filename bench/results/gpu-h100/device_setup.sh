# Sourced at the start of every device call (see NOTES.md): unpacks the
# carried Vulkan/EGL loaders and Deno, and points Deno at the carried npm
# cache. Expects the carry list: .gl .denobin .denodir
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
mkdir -p /tmp/denobin
xz -dc .denobin/deno.xz > /tmp/denobin/deno
chmod +x /tmp/denobin/deno
export PATH=/tmp/denobin:$PATH
export DENO_DIR=$PWD/.denodir NO_COLOR=1
deno --version | head -n 1
