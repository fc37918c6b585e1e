/**
 * The access log's lines gathered into chunks before they reach the
 * destination (pino's sonic-boom): pino hands over one string per line, and
 * sonic-boom measures and appends every string it is given, which on a busy
 * listener costs more than building the line. Here a line is an array push;
 * sonic-boom sees one write per BATCH_BYTES (or per flush, at least once a
 * second), so the lines are the same bytes in the same order, fewer writes.
 */
export interface LineSink {
  write (chunk: string): unknown
}

export class LineBatch {
  readonly #sink: LineSink
  readonly #limit: number
  #parts: string[] = []
  #length = 0

  constructor (sink: LineSink, limit: number) {
    this.#sink = sink
    this.#limit = limit
  }

  /** What pino calls for each line. */
  write (line: string): boolean {
    this.#parts.push(line)
    this.#length += line.length
    if (this.#length >= this.#limit) this.flush()
    return true
  }

  /** Hands what is gathered to the sink (nothing when empty). */
  flush (): void {
    if (this.#parts.length === 0) return
    const chunk = this.#parts.length === 1 ? this.#parts[0] as string : this.#parts.join('')
    this.#parts = []
    this.#length = 0
    this.#sink.write(chunk)
  }

  get pending (): number {
    return this.#length
  }
}
