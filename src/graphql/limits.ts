/**
 * Query depth and cost limits, checked after validation and before execution,
 * for HTTP requests (an Apollo plugin, server/apollo.ts) and for subscriptions
 * alike. Both see the operation with its fragments expanded and its variables
 * applied, so a variable page size is priced by its value.
 *
 * Cost model (an estimate of work, not of bytes):
 * - every field costs 1 (its weight in FIELD_WEIGHTS if listed there: fields
 *   that cost extra database reads);
 * - a page-size argument (`first`, `last`, `limit`: its value, else the
 *   schema default, else 1) multiplies what is repeated per item: the field's
 *   selection when the field is a list (Job.events(last)), or the list fields
 *   of its selection when it returns a connection object (jobs(first) →
 *   edges, nodes; not totalCount or pageInfo, which come once per page);
 * - introspection fields (`__schema`, `__type`) are free and not counted for
 *   depth: switch introspection off to refuse them.
 * Rejected alternative: graphql-armor's cost rule is static (it cannot see
 * `first: $n`), so a 1,000-job page would cost the same as a 1-job page.
 */
import {
  getArgumentValues,
  getNamedType,
  getNullableType,
  GraphQLError,
  isListType,
  isObjectType,
  Kind,
} from "graphql";
import type {
  DocumentNode,
  FieldNode,
  FragmentDefinitionNode,
  GraphQLField,
  GraphQLObjectType,
  GraphQLSchema,
  OperationDefinitionNode,
  SelectionSetNode,
} from "graphql";

export interface QueryLimits {
  /** Most nested field levels (a top-level field is level 1). */
  maxDepth: number;
  /** Highest estimated cost (see the model above). */
  maxCost: number;
  /**
   * Most root fields of one mutation operation, aliases and fragments
   * included: each is a write (1,000 aliased enqueueJob fields would be 1,000
   * jobs in one request; enqueueJobs is the batch form).
   */
  maxMutationFields: number;
}

export const DEFAULT_QUERY_LIMITS: QueryLimits = Object.freeze({
  maxDepth: 12,
  maxCost: 50_000,
  maxMutationFields: 50,
});

const PAGE_SIZE_ARGUMENTS = ["first", "last", "limit"];

/** Fields that cost more than one unit: each is several database reads. */
const FIELD_WEIGHTS: Readonly<Record<string, number>> = Object.freeze({
  "Queue.stats": 10,
  "JobConnection.totalCount": 10,
});

interface Size {
  depth: number;
  cost: number;
}

export interface QueryMeasure extends Size {
  /** Root field selections (aliases and fragments expanded, __typename not counted). */
  rootFields: number;
  operation: OperationDefinitionNode["operation"];
}

/** Measures an operation of a validated document. */
export function measureOperation(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Record<string, unknown>,
): QueryMeasure {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const def of document.definitions) {
    if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def);
  }
  const root =
    operation.operation === "query"
      ? schema.getQueryType()
      : operation.operation === "mutation"
        ? schema.getMutationType()
        : schema.getSubscriptionType();
  if (!root) return { depth: 0, cost: 0, rootFields: 0, operation: operation.operation };

  /** `perItem`: the page size of the parent connection, applied to its list fields. */
  const walk = (
    set: SelectionSetNode,
    type: GraphQLObjectType,
    level: number,
    seen: Set<string>,
    perItem = 1,
  ): Size => {
    let depth = level - 1;
    let cost = 0;
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        const m = measureField(selection, type, level, seen, perItem);
        depth = Math.max(depth, m.depth);
        cost += m.cost;
        continue;
      }
      const fragment = selection.kind === Kind.FRAGMENT_SPREAD ? fragments.get(selection.name.value) : selection;
      if (!fragment) continue;
      const key = selection.kind === Kind.FRAGMENT_SPREAD ? selection.name.value : null;
      if (key !== null && seen.has(key)) continue; // a cycle (validation refuses these anyway)
      const typeName = fragment.typeCondition?.name.value;
      const fragmentType = typeName ? schema.getType(typeName) : type;
      if (!isObjectType(fragmentType)) continue;
      const inner = new Set(seen);
      if (key !== null) inner.add(key);
      const m = walk(fragment.selectionSet, fragmentType, level, inner, perItem);
      depth = Math.max(depth, m.depth);
      cost += m.cost;
    }
    return { depth, cost };
  };

  const measureField = (
    node: FieldNode,
    parent: GraphQLObjectType,
    level: number,
    seen: Set<string>,
    perItem: number,
  ): Size => {
    const name = node.name.value;
    if (name.startsWith("__")) return { depth: 0, cost: 0 };
    const field = parent.getFields()[name];
    if (!field) return { depth: level, cost: 1 };
    const isList = isListType(getNullableType(field.type));
    const repeat = isList ? perItem : 1;
    const weight = FIELD_WEIGHTS[`${parent.name}.${name}`] ?? 1;
    const returned = getNamedType(field.type);
    if (!node.selectionSet || !isObjectType(returned)) return { depth: level, cost: repeat * weight };
    const size = pageSize(field, node, variables);
    const inner = isList
      ? walk(node.selectionSet, returned, level + 1, seen)
      : walk(node.selectionSet, returned, level + 1, seen, size);
    return { depth: inner.depth, cost: repeat * (weight + (isList ? size : 1) * inner.cost) };
  };

  const countRootFields = (set: SelectionSetNode, seen: Set<string>): number => {
    let n = 0;
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        if (!selection.name.value.startsWith("__")) n++;
        continue;
      }
      const key = selection.kind === Kind.FRAGMENT_SPREAD ? selection.name.value : null;
      const fragment = selection.kind === Kind.FRAGMENT_SPREAD ? fragments.get(selection.name.value) : selection;
      if (!fragment || (key !== null && seen.has(key))) continue;
      n += countRootFields(fragment.selectionSet, key !== null ? new Set([...seen, key]) : seen);
    }
    return n;
  };

  return {
    ...walk(operation.selectionSet, root, 1, new Set()),
    rootFields: countRootFields(operation.selectionSet, new Set()),
    operation: operation.operation,
  };
}

function pageSize(field: GraphQLField<unknown, unknown>, node: FieldNode, variables: Record<string, unknown>): number {
  const sizeArg = field.args.find((a) => PAGE_SIZE_ARGUMENTS.includes(a.name));
  if (!sizeArg) return 1;
  let values: Record<string, unknown>;
  try {
    values = getArgumentValues(field, node, variables);
  } catch {
    return 1; // invalid arguments are reported by execution with their own error
  }
  // An explicit null gets the resolver's default, so it is priced at the schema default.
  const size = values[sizeArg.name] ?? sizeArg.defaultValue;
  return typeof size === "number" && Number.isFinite(size) && size > 1 ? size : 1;
}

/** The error for an operation past a limit, or null when it is within all of them. */
export function checkQueryLimits(measure: QueryMeasure, limits: QueryLimits): GraphQLError | null {
  if (measure.operation === "mutation" && measure.rootFields > limits.maxMutationFields) {
    return new GraphQLError(
      `the mutation has ${measure.rootFields} root fields; the limit is ${limits.maxMutationFields} (send batches with enqueueJobs / completeJobs, or several requests)`,
      {
        extensions: {
          code: "TOO_MANY_MUTATIONS",
          rootFields: measure.rootFields,
          maxMutationFields: limits.maxMutationFields,
          http: { status: 400 },
        },
      },
    );
  }
  if (measure.depth > limits.maxDepth) {
    return new GraphQLError(`query is nested ${measure.depth} levels deep; the limit is ${limits.maxDepth}`, {
      extensions: { code: "QUERY_TOO_DEEP", depth: measure.depth, maxDepth: limits.maxDepth, http: { status: 400 } },
    });
  }
  if (measure.cost > limits.maxCost) {
    return new GraphQLError(
      `query cost ${measure.cost} exceeds the limit of ${limits.maxCost}; ask for smaller pages (first, last, limit) or fewer fields`,
      { extensions: { code: "QUERY_TOO_COSTLY", cost: measure.cost, maxCost: limits.maxCost, http: { status: 400 } } },
    );
  }
  return null;
}
