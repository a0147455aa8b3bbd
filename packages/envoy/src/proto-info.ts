// Per-message reflection facts the codec needs, computed once per protobufjs Type.
import protobuf from 'protobufjs';

/** The scalar proto types (everything that is neither a message nor an enum). */
export type ScalarType =
  | 'double'
  | 'float'
  | 'int32'
  | 'uint32'
  | 'sint32'
  | 'fixed32'
  | 'sfixed32'
  | 'int64'
  | 'uint64'
  | 'sint64'
  | 'fixed64'
  | 'sfixed64'
  | 'bool'
  | 'string'
  | 'bytes';

const SCALARS = new Set<string>([
  'double',
  'float',
  'int32',
  'uint32',
  'sint32',
  'fixed32',
  'sfixed32',
  'int64',
  'uint64',
  'sint64',
  'fixed64',
  'sfixed64',
  'bool',
  'string',
  'bytes',
]);

/** protoc-gen-validate rules as protobufjs parses them (snake_case keys). */
export type PgvRules = Readonly<Record<string, unknown>>;

/** What the codec knows about one field. */
export interface FieldInfo {
  readonly field: protobuf.Field;
  /** protobufjs' property name (camelCase of letters only: `consecutive_5xx` stays). */
  readonly name: string;
  /** The proto3-JSON name (protoc's json_name: `consecutive5xx`). */
  readonly jsonName: string;
  readonly kind: 'scalar' | 'enum' | 'message';
  readonly scalar: ScalarType | undefined;
  readonly enumType: protobuf.Enum | undefined;
  readonly messageType: protobuf.Type | undefined;
  readonly repeated: boolean;
  readonly map: boolean;
  readonly keyType: ScalarType | undefined;
  /** The oneof this field belongs to (not the synthetic oneof of a proto3 `optional`). */
  readonly oneof: protobuf.OneOf | undefined;
  /** Whether absence is distinguishable from the default (messages, oneof members, `optional`). */
  readonly presence: boolean;
  readonly deprecated: boolean;
  readonly rules: PgvRules | undefined;
}

/** What the codec knows about one message type. */
export interface TypeInfo {
  readonly type: protobuf.Type;
  readonly fullName: string;
  readonly fields: readonly FieldInfo[];
  /** Fields by proto3-JSON name. */
  readonly byJsonName: ReadonlyMap<string, FieldInfo>;
  /** Original snake_case names, to suggest the JSON name when one is used by mistake. */
  readonly bySnakeName: ReadonlyMap<string, FieldInfo>;
  /** Oneofs that protoc-gen-validate requires to have a member set (their members' JSON names). */
  readonly requiredOneofs: readonly (readonly string[])[];
  /** Whether protoc-gen-validate checks are disabled for this message. */
  readonly validationDisabled: boolean;
}

const cache = new Map<protobuf.Type, TypeInfo>();

function snakeCase(camel: string): string {
  return camel.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());
}

/** protoc's json_name rule: drop each underscore and upper-case the character after it. */
function jsonName(name: string): string {
  return name.replace(/_(.)/g, (_m, c: string) => c.toUpperCase()).replace(/_/g, '');
}

function parsedOption(
  obj: { parsedOptions?: unknown; options?: Record<string, unknown> | undefined },
  name: string,
): unknown {
  const parsed = obj.parsedOptions;
  if (Array.isArray(parsed)) {
    for (const entry of parsed as unknown[]) {
      if (entry && typeof entry === 'object' && name in entry)
        return (entry as Record<string, unknown>)[name];
    }
  }
  return obj.options?.[name];
}

function fieldInfo(field: protobuf.Field): FieldInfo {
  field.resolve();
  const resolved = field.resolvedType;
  const scalar = SCALARS.has(field.type) ? (field.type as ScalarType) : undefined;
  const enumType = resolved instanceof protobuf.Enum ? resolved : undefined;
  const messageType = resolved instanceof protobuf.Type ? resolved : undefined;
  const kind = messageType ? 'message' : enumType ? 'enum' : 'scalar';
  const partOf = field.partOf ?? undefined;
  const synthetic =
    partOf !== undefined &&
    partOf.oneof.length === 1 &&
    (field.options?.proto3_optional === true || partOf.name === '_' + field.name);
  const rules = parsedOption(field, '(validate.rules)');
  const map = field instanceof protobuf.MapField;
  return {
    field,
    name: field.name,
    jsonName: jsonName(field.name),
    kind,
    scalar,
    enumType,
    messageType,
    repeated: field.repeated && !map,
    map,
    keyType: map ? (field.keyType as ScalarType) : undefined,
    oneof: partOf && !synthetic ? partOf : undefined,
    presence: kind === 'message' || partOf !== undefined,
    deprecated: field.options?.deprecated === true,
    rules: rules && typeof rules === 'object' ? (rules as PgvRules) : undefined,
  };
}

/** Reflection facts for a message type (cached). */
export function typeInfo(type: protobuf.Type): TypeInfo {
  const hit = cache.get(type);
  if (hit) return hit;
  const fields = type.fieldsArray.map(fieldInfo);
  const byJsonName = new Map(fields.map((f) => [f.jsonName, f]));
  const bySnakeName = new Map<string, FieldInfo>();
  for (const f of fields) {
    const snake = snakeCase(f.name);
    if (snake !== f.jsonName) bySnakeName.set(snake, f);
  }
  const requiredOneofs = type.oneofsArray
    .filter((o) => parsedOption(o, '(validate.required)') === true)
    .map((o) => o.oneof.map(jsonName));
  const info: TypeInfo = {
    type,
    fullName: type.fullName.replace(/^\./, ''),
    fields,
    byJsonName,
    bySnakeName,
    requiredOneofs,
    validationDisabled:
      parsedOption(type, '(validate.disabled)') === true ||
      parsedOption(type, '(validate.ignored)') === true,
  };
  cache.set(type, info);
  return info;
}
