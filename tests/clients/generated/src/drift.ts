// Compile-time check: @jobwire/client's wire types (clients/typescript/src/types.ts) have
// the fields clients/openapi.json gives the same objects, camelCased. `tsc` fails on drift.
import type { components } from "./schema.js";
import type {
  ErrorInfo,
  FunctionLimits,
  Job,
  JobFilter,
  LeasedJob,
  QueueInfo,
  QueueSettings,
  QueueSettingsReply,
  QueueState,
  Rate,
  WorkerInfo,
} from "../../../../clients/typescript/src/types.js";

type Schemas = components["schemas"];
type Camel<S extends string> = S extends `${infer H}_${infer T}` ? `${H}${Capitalize<Camel<T>>}` : S;
type CamelKeys<T> = Camel<keyof T & string>;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Check<T extends true> = T;

export type Checks = [
  Check<Same<CamelKeys<Schemas["Job"]>, Exclude<keyof Job, "duplicate">>>,
  Check<Same<CamelKeys<Schemas["EnqueuedJob"]>, keyof Required<Job>>>,
  Check<Same<CamelKeys<Schemas["LeasedJob"]>, Exclude<keyof LeasedJob, "duplicate">>>,
  Check<Same<CamelKeys<Schemas["ErrorInfo"]>, keyof ErrorInfo>>,
  Check<Same<CamelKeys<Schemas["QueueInfo"]>, keyof QueueInfo>>,
  Check<Same<CamelKeys<Schemas["WorkerSeen"]>, keyof WorkerInfo>>,
  Check<Same<Schemas["Status"], Job["status"]>>,
  // Flow control: settings both ways, the bulk filter, the answers.
  Check<Same<CamelKeys<Schemas["QueueSettingsBody"]>, keyof QueueSettings>>,
  Check<Same<CamelKeys<Schemas["FunctionLimitsBody"]>, keyof FunctionLimits>>,
  Check<Same<CamelKeys<Schemas["RateBody"]>, keyof Rate>>,
  Check<Same<CamelKeys<Schemas["JobFilterBody"]>, keyof JobFilter>>,
  Check<Same<CamelKeys<Schemas["QueueState"]>, keyof QueueState>>,
  Check<Same<CamelKeys<Schemas["QueueSettingsResult"]>, keyof QueueSettingsReply>>,
];
