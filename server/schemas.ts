/**
 * One zod schema per route for everything a client passes besides the image bytes: path
 * parameters, query and JSON body, each validated once (`parseRoute`) at the top of its handler.
 * The schemas describe the wire format (query values are strings) and every field's description
 * says what it must be, so an OpenAPI generator can read them with `z.toJSONSchema(s, { io: 'input' })`
 * and an error message names the parameter, what it must be and the value it got.
 */
import type { Request } from 'express';
import { z } from 'zod';
import { decodeCursor } from './cursor.js';
import { BadRequestError, InvalidParameterError } from './errors.js';

export const TOPK_MAX = 100;
export const K_MAX = 100;
/** GET /v1/images: images per page. */
export const LIST_LIMIT_MAX = 500;
/** GET /v1/duplicates: groups per page. */
export const GROUPS_LIMIT_MAX = 200;

/** An integer in [min, max] written in the query (only digits: `1e1` and `0x10` are refused). */
function intQuery(min: number, max: number, fallback: number) {
  return z
    .string()
    .regex(/^\s*-?\d+\s*$/)
    .transform(Number)
    .pipe(z.number().int().min(min).max(max))
    .default(fallback)
    .describe(`an integer in [${min}, ${max}]`);
}

function cropsQuery(fallback: 1 | 10) {
  return z
    .enum(['1', '10'])
    .transform((v): 1 | 10 => (v === '1' ? 1 : 10))
    .default(fallback)
    .describe('1 or 10');
}

const TRUE = ['1', 'true', 'yes'] as const;
const FALSE = ['0', 'false', 'no'] as const;

function boolQuery(fallback: boolean) {
  return z
    .enum([...TRUE, ...FALSE])
    .transform((v) => (TRUE as readonly string[]).includes(v))
    .default(fallback)
    .describe('true or false');
}

/** Optional true/false (absent = no filter). */
const optionalBool = z
  .enum([...TRUE, ...FALSE])
  .transform((v) => (TRUE as readonly string[]).includes(v))
  .optional()
  .describe('true or false');

/** A `next_cursor` of the same listing, decoded to the position it stands for. */
function cursorQuery(listing: string) {
  return z
    .string()
    .transform((v, ctx) => {
      const at = decodeCursor(listing, v);
      if (at === undefined) ctx.addIssue({ code: 'custom', message: 'a next_cursor returned by this route (opaque; do not build one)' });
      return at ?? 0;
    })
    .optional()
    .describe('a next_cursor returned by this route');
}

/** A plain non-negative decimal; absent or empty → undefined. */
function decimalQuery(description: string, max = Infinity) {
  return z
    .preprocess(
      (v) => (v === '' ? undefined : v),
      z
        .string()
        .regex(/^\d+(\.\d+)?(e[+-]?\d+)?$/i)
        .transform(Number)
        .pipe(z.number().finite().max(max))
        .optional(),
    )
    .describe(description);
}

function labelQuery(labels: readonly string[]) {
  return z
    .preprocess((v) => (v === '' ? undefined : v), z.enum(labels as [string, ...string[]]).optional())
    .describe(`one of the model's labels (${labels.join(', ')})`);
}

/** Image ids: positive integers, at most 15 digits so they stay exact in a double. */
const idParam = z
  .string()
  .regex(/^\d{1,15}$/)
  .transform(Number)
  .pipe(z.number().int().min(1))
  .describe('a positive integer');

/** Search options shared by POST /v1/search and GET /v1/images/:id/similar; `label` is one of the model's labels. */
function searchQuery(labels: readonly string[]) {
  return z
    .object({
      k: intQuery(1, K_MAX, 10),
      rerank: boolQuery(true),
      label: labelQuery(labels),
      // Absent → no cut-off.
      max_distance: decimalQuery('a finite number ≥ 0 (fc7 Euclidean distance)'),
    })
    .superRefine((q, ctx) => {
      if (q.max_distance !== undefined && !q.rerank) {
        ctx.addIssue({ code: 'custom', path: ['max_distance'], message: 'used with rerank=true (it bounds the embedding distance)' });
      }
    });
}

/** The parameter schemas of every route, built for one model (its labels and crop policy). */
export function routeSchemas(model: { labels: readonly string[]; embedCrops: 1 | 10 }) {
  return {
    classify: z.object({ query: z.object({ topk: intQuery(1, TOPK_MAX, 5), crops: cropsQuery(10) }) }),
    embed: z.object({
      query: z.object({ format: z.enum(['json', 'base64']).default('json').describe('one of json, base64'), crops: cropsQuery(model.embedCrops) }),
    }),
    search: z.object({ query: searchQuery(model.labels) }),
    image: z.object({ params: z.object({ id: idParam }) }),
    duplicates: z.object({
      query: z
        .object({
          limit: intQuery(1, GROUPS_LIMIT_MAX, 20),
          cursor: cursorQuery('groups'),
          max_relative_distance: decimalQuery('a number in (0, 2] (embedding distance / mean embedding norm of the pair)', 2),
          max_distance: decimalQuery('a finite number ≥ 0 (fc7 Euclidean distance, instead of the relative one)'),
          neighbours: intQuery(1, 99, 10),
        })
        .superRefine((q, ctx) => {
          if (q.max_relative_distance === 0) ctx.addIssue({ code: 'custom', path: ['max_relative_distance'], message: 'a number in (0, 2] (embedding distance / mean embedding norm of the pair)' });
          if (q.max_relative_distance !== undefined && q.max_distance !== undefined) {
            ctx.addIssue({ code: 'custom', path: ['max_distance'], message: 'absent when max_relative_distance is given (one threshold or the other)' });
          }
        }),
    }),
    listImages: z.object({
      query: z.object({ limit: intQuery(1, LIST_LIMIT_MAX, 50), cursor: cursorQuery('images'), label: labelQuery(model.labels), unknown: optionalBool }),
    }),
    similar: z.object({ params: z.object({ id: idParam }), query: searchQuery(model.labels) }),
    startJob: z.object({
      body: z
        .object({
          path: z
            .string()
            .min(1)
            .max(4096)
            .refine((p) => !p.includes('\0'), 'a folder path without NUL characters')
            .describe('a non-empty folder path'),
          recursive: z.boolean().default(true).describe('true or false'),
        })
        .describe('JSON like {"path": "/photos", "recursive": true}'),
    }),
  };
}

export type RouteSchemas = ReturnType<typeof routeSchemas>;

type Section = 'params' | 'query' | 'body';
type RouteSchema = z.ZodObject<Partial<Record<Section, z.ZodType>>>;

function rawSection(req: Request, section: Section): unknown {
  return section === 'params' ? req.params : section === 'query' ? req.query : (req.body as unknown);
}

/** Validates a request against its route's schema; the first problem becomes a 400 naming the parameter and value. */
export function parseRoute<S extends RouteSchema>(schema: S, req: Request): z.output<S> {
  const sections = Object.keys(schema.shape) as Section[];
  const input = Object.fromEntries(sections.map((s) => [s, rawSection(req, s)]));
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const [section, name] = (issue?.path ?? []) as [Section | undefined, PropertyKey | undefined];
  const sectionSchema = section === undefined ? undefined : (schema.shape[section] as z.ZodType | undefined);
  if (name === undefined || !(sectionSchema instanceof z.ZodObject)) {
    throw new BadRequestError(`request ${section ?? 'parameters'} must be ${sectionSchema?.description ?? issue?.message ?? 'valid'}`);
  }
  const field = (sectionSchema.shape as Record<string, z.ZodType | undefined>)[String(name)];
  const value = (rawSection(req, section as Section) as Record<string, unknown> | undefined)?.[String(name)];
  // A rule across fields (custom issue) says what it wants itself; a field's own schema says it in its description.
  const expected = issue?.code === 'custom' ? issue.message : (field?.description ?? issue?.message ?? 'valid');
  throw new InvalidParameterError(String(name), expected, value);
}
