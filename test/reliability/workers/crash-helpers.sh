#!/bin/sh
# A worker for the crash-restart case: leaves a setsid'd helper and a double-forked setsid'd helper
# behind (both exec sleep), waits until both have started, then crashes. The daemon must remove
# both before it spawns the next worker.
{
  setsid sh -c 'echo up; exec sleep 1000' &
  (setsid sh -c 'echo up; exec sleep 1000' &)
} | head -n 2 >/dev/null
exit 1
