# mmdebstrap customize hook: runs on the finished tree ($1). $HK_GUEST_KEY is the public key that may
# log in as root and as the sudo user `hk`.
set -eu
root="$1"
mkdir -p "$root/etc/systemd/network"
printf '[Match]\nName=eth*\n\n[Network]\nDHCP=ipv4\n' > "$root/etc/systemd/network/20-eth.network"
chroot "$root" systemctl enable systemd-networkd ssh
# Timers that would wake up in the middle of a test run.
for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer; do
  chroot "$root" systemctl mask "$unit"
done
echo hk-guest > "$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 hk-guest\n::1 localhost ip6-localhost ip6-loopback\n' > "$root/etc/hosts"
printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' > "$root/etc/fstab"
install -d -m 0700 "$root/root/.ssh"
install -m 0600 "$HK_GUEST_KEY" "$root/root/.ssh/authorized_keys"
chroot "$root" useradd --create-home --shell /bin/bash --groups sudo hk
install -d -m 0700 "$root/home/hk/.ssh"
install -m 0600 "$HK_GUEST_KEY" "$root/home/hk/.ssh/authorized_keys"
chroot "$root" chown -R hk:hk /home/hk/.ssh
printf 'hk ALL=(ALL) NOPASSWD: ALL\n' > "$root/etc/sudoers.d/hk"
chmod 0440 "$root/etc/sudoers.d/hk"
printf 'PasswordAuthentication no\nKbdInteractiveAuthentication no\n' > "$root/etc/ssh/sshd_config.d/hk.conf"
