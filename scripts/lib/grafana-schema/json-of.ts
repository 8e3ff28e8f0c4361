// The JSON form of a TypeScript type from @grafana/schema.
//
// @grafana/schema declares some fields as TypeScript string enums (e.g. thresholds.mode:
// ThresholdsMode, whose member Absolute has the value "absolute"; value mappings' `type`).
// A dashboard's JSON holds the enum's *value* ("absolute"), which TypeScript does not accept
// where the enum type is expected (string enums are nominal). JsonOf<T> replaces every string
// enum by the union of its values (`${E}` gives "absolute" | "percentage") and keeps
// everything else as it is: field names, optionality, required fields, numbers, literal unions
// and the excess-property check of object literals are unchanged. No other loosening.
export type JsonOf<T> =
  T extends string ? `${T}`
  : T extends readonly (infer U)[] ? JsonOf<U>[]
  : T extends object ? { [K in keyof T]: JsonOf<T[K]> }
  : T;
