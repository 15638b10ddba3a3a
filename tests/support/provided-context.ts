/** Values the global setup hands to tests through `inject(...)`. */
import type {} from "vitest";

declare module "vitest" {
  export interface ProvidedContext {
    dynamodbEndpoint: string;
  }
}
