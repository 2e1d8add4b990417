#!/bin/sh
# A worker that leaves a setsid'd helper and a double-forked setsid'd helper, then runs on (as
# sleep): a tree a SIGKILLed daemon orphans, which the next daemon must remove before it spawns.
{
  setsid sh -c 'echo up; exec sleep 1000' &
  (setsid sh -c 'echo up; exec sleep 1000' &)
} | head -n 2 >/dev/null
exec sleep 1000
