// Reading and writing a Config by dotted key ("memory.poll_interval_ms").

export function getByKey(root: object, key: string): unknown {
  let node: unknown = root;
  for (const part of key.split('.')) node = (node as Record<string, unknown> | undefined)?.[part];
  return node;
}

/** Sets an existing key; the tables on the way must exist (they do in a Config). */
export function setByKey(root: object, key: string, value: unknown): void {
  const parts = key.split('.');
  const last = parts.pop() as string;
  let node = root as Record<string, unknown>;
  for (const part of parts) node = node[part] as Record<string, unknown>;
  node[last] = value;
}
