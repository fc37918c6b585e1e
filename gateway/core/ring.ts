/** Slot of index `i` in a ring of `n` slots; non-negative even for negative `i` (JS % keeps the sign). */
export const ringIndex = (i: number, n: number): number => ((i % n) + n) % n
