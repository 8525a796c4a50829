export function revalue(n: i32): i32 { return n; }
