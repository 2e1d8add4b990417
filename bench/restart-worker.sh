# The worker of bench/restart-latency.mjs: $1 = stamp log, $2 = token FIFO. Builtins only (no fork):
# a start stamp first thing, one token read (blocks until the bench lets this run end), an end stamp
# right before the exit. EPOCHREALTIME is bash's wall clock in microseconds.
printf 's %s\n' "$EPOCHREALTIME" >> "$1"
read -r _ < "$2"
printf 'e %s\n' "$EPOCHREALTIME" >> "$1"
