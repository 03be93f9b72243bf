#!/bin/sh
# Run as the ExecStart of a copy of miniship.service (run.sh): what its sandbox lets it
# write and see. One line per path: "writable PATH" or "refused PATH".
for f in /opt/miniship/probe /etc/miniship/probe /etc/probe /usr/probe /var/probe \
    /root/probe /home/probe /var/lib/miniship/probe /tmp/probe /var/tmp/probe; do
    if touch "$f" 2>/dev/null; then echo "writable $f"; rm -f "$f"; else echo "refused $f"; fi
done
touch /tmp/miniship-probe-tmp  # PrivateTmp: not in the machine's /tmp (run.sh looks)
if cat /etc/miniship/miniship.env >/dev/null 2>&1; then echo "readable env-file"; else echo "refused env-file"; fi
echo "uid $(id -u)"
echo "devices $(ls /dev | wc -l)"
echo "processes $(ls -d /proc/[0-9]* | wc -l)"
grep -E '^(NoNewPrivs|Seccomp|CapEff):' /proc/self/status
