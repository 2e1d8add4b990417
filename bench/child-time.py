#!/usr/bin/env python3
# Runs each command (JSON list on stdin of {"argv": [...], "env": {...}}) ROUNDS times, interleaved, and prints
# JSON: per command the wall and CPU (user+sys, from wait4's rusage, microsecond resolution) times
# in ms. CPU time is what a loaded, shared machine distorts least. Usage: child-time.py ROUNDS < cmds
import json, os, subprocess, sys, time
rounds = int(sys.argv[1])
cmds = json.load(sys.stdin)
out = [{"wall": [], "cpu": []} for _ in cmds]
devnull = open(os.devnull, "wb")
for i in range(rounds):
    for j in range(len(cmds)):
        k = (i + j) % len(cmds)
        t = time.perf_counter()
        p = subprocess.Popen(cmds[k]["argv"], env=cmds[k]["env"], stdout=devnull, stderr=devnull)
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = 0  # reaped by wait4 above
        wall = (time.perf_counter() - t) * 1000
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"{cmds[k]['argv']} exited {os.waitstatus_to_exitcode(status)}")
        out[k]["wall"].append(wall)
        out[k]["cpu"].append((ru.ru_utime + ru.ru_stime) * 1000)
json.dump(out, sys.stdout)
