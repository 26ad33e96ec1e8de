// Type-level contract of the OpenAPI document, as a TypeScript SPA would use it.
//
// run.sh generates `./schema.d.ts` from the server's /api/v1/openapi.json with
// openapi-typescript, copies this file beside it and runs `tsc --strict --noEmit`.
// Nothing is executed: the test is that these reads compile WITHOUT casts,
// i.e. that the spec describes the real response envelopes
// `{success, data, message, request_id, timestamp}`.
//
// Do not add `as`, `any`, `!` or `@ts-…` comments here: a cast would hide
// exactly the spec bug this file exists to catch.

import createClient from "openapi-fetch";
import type { paths } from "./schema";

const client = createClient<paths>({ baseUrl: "http://127.0.0.1:8080" });

export async function contract(email: string, password: string): Promise<void> {
  // Login: the tokens live in the envelope's `data`.
  const login = await client.POST("/api/v1/auth/login/", {
    body: { email, password },
  });
  if (login.error !== undefined) {
    // Error answers are the error envelope.
    const code: string = login.error.error_code;
    throw new Error(`login refused: ${code}`);
  }
  const accessToken: string = login.data.data.access_token;
  const headers = { Authorization: `Bearer ${accessToken}` };

  // A page of keywords: `data.results` is an array of keywords.
  const keywords = await client.GET("/api/v1/planner/keywords/", {
    headers,
    params: { query: { page: 1, page_size: 10 } },
  });
  if (keywords.error !== undefined) {
    throw new Error(`keywords refused: ${keywords.error.error_code}`);
  }
  const firstKeyword: string = keywords.data.data.results[0].keyword;

  // The credit balance.
  const credits = await client.GET("/api/v1/billing/credits/", { headers });
  if (credits.error !== undefined) {
    throw new Error(`credits refused: ${credits.error.error_code}`);
  }
  const available: number = credits.data.data.available;

  console.log(firstKeyword, available);
}
