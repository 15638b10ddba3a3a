// The benchmark's row i, shared by the direct client; bench/dynamodb_bench.py builds the
// same columns in Spark SQL (id, name, age, score, balance decimal(18,2), attrs map).
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
