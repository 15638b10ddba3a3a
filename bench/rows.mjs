// What the direct clients share: the benchmark's row i (bench/bench_common.py builds the
// same columns in Spark SQL: id, name, age, score, balance decimal(18,2), attrs map) and the timing.
export function benchRow(i) {
  return {
    id: `id-${String(i).padStart(9, "0")}`,
    name: `name-${i}`,
    age: i % 100,
    score: i * 0.5,
    balance: (i / 100).toFixed(2),
    attrs: { city: `c${i % 10}`, zip: String(i % 99999) },
  };
}

/**
 * Times a direct client's write and then its full read (which returns the rows it saw);
 * returns the JSON figures scripts/bench.sh reads, with the client's CPU time per row.
 */
export async function measureDirect(rows, writeAll, readAll) {
  const timed = async (run) => {
    const cpu = process.cpuUsage();
    const start = performance.now();
    const result = await run();
    const usage = process.cpuUsage(cpu);
    return { result, seconds: (performance.now() - start) / 1000, cpuUsPerRow: Number(((usage.user + usage.system) / rows).toFixed(1)) };
  };
  const write = await timed(writeAll);
  const read = await timed(readAll);
  if (read.result !== rows) throw new Error(`direct read returned ${read.result} rows, expected ${rows}`);
  return {
    rows,
    write_seconds: write.seconds,
    read_seconds: read.seconds,
    write_rows_per_s: rows / write.seconds,
    read_rows_per_s: rows / read.seconds,
    write_cpu_us_per_row: write.cpuUsPerRow,
    read_cpu_us_per_row: read.cpuUsPerRow,
  };
}

/** A benchmark row as the DynamoDB item both direct DynamoDB clients write. */
export function benchItem(row) {
  return {
    id: { S: row.id },
    name: { S: row.name },
    age: { N: String(row.age) },
    score: { N: String(row.score) },
    balance: { N: row.balance },
    attrs: { M: Object.fromEntries(Object.entries(row.attrs).map(([k, v]) => [k, { S: v }])) },
  };
}
