# mmdebstrap setup hook: runs on the empty tree ($1) before any package is installed.
set -eu
root="$1"
# A small initramfs with only what a virtio disk needs: 6 MB instead of 36 MB, boots faster under TCG.
mkdir -p "$root/etc/initramfs-tools/conf.d"
printf 'MODULES=list\n' > "$root/etc/initramfs-tools/conf.d/hk.conf"
printf 'virtio_pci\nvirtio_blk\next4\n' > "$root/etc/initramfs-tools/modules"
