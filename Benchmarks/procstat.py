"""A process's memory and CPU from /proc, for the benchmarks' Python drivers (media.sh, media-s3.sh)."""
import os, threading, time

def rss_kib(pid):
    """Resident memory now, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

def cpu_seconds(pid):
    """User and system CPU used so far, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

class Sampler(threading.Thread):
    """Samples a process's resident memory every `interval` seconds until `stop()`; `peak` is the highest, in KiB."""
    def __init__(self, pid, interval):
        super().__init__(daemon=True); self.pid = pid; self.interval = interval; self.peak = 0; self.running = True
    def run(self):
        while self.running:
            self.peak = max(self.peak, rss_kib(self.pid)); time.sleep(self.interval)
    def stop(self):
        self.running = False; self.join()
