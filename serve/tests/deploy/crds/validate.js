#!/usr/bin/env node
// Validates Kubernetes custom resources (KEDA's and prometheus-operator's) against their schemas,
// with the models of @kubernetes-models/keda and @kubernetes-models/prometheus-operator
// (package.json pins them; README.md beside this file says what they check and what they do not).
//
// Input, on stdin: JSON, an array (or a single one) of entries, each either
//   {"source": "<where it comes from, e.g. scaledobject.yaml[0]>", "document": {...}}
// or a bare document (its source is then "stdin[<index>]"). serve/tests/deploy converts the YAML
// with PyYAML and sends this.
//
// Output: one line per error, "<source> <kind>/<name>: <field>: <what is wrong>", on stdout
// (stderr is left to node's own warnings); nothing on success. Exit status 0 if every document
// validates, 1 if one does not (or has a kind no model knows), 2 if stdin is not JSON.

import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const require = createRequire(import.meta.url);

// API group -> the package with its models; a model is the module <package>/<apiVersion>/<kind>
// (the packages' export maps), loaded only when a document asks for it.
const PACKAGES = new Map([
  ["keda.sh", "@kubernetes-models/keda"],
  ["eventing.keda.sh", "@kubernetes-models/keda"],
  ["monitoring.coreos.com", "@kubernetes-models/prometheus-operator"],
]);

async function modelFor(apiVersion, kind) {
  const [group, version, ...rest] = String(apiVersion).split("/");
  const pkg = PACKAGES.get(group);
  if (!pkg || !/^v\w+$/.test(version ?? "") || rest.length || !/^[A-Z]\w*$/.test(kind ?? "")) {
    return null;
  }
  // The package must be there (`make setup`); the kind's module need not be.
  // (require.resolve, not import.meta.resolve: that one needs node 20.6.)
  const root = dirname(require.resolve(`${pkg}/package.json`));
  if (!existsSync(join(root, group, version, `${kind}.js`))) return null;
  const model = (await import(`${pkg}/${group}/${version}/${kind}`))[kind];
  // A module of that name that is not a top-level kind (e.g. a nested type) has no model.
  return model?.apiVersion === apiVersion && model?.kind === kind ? model : null;
}

function readStdin() {
  return new Promise((resolve, reject) => {
    const chunks = [];
    process.stdin.on("data", (c) => chunks.push(c));
    process.stdin.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    process.stdin.on("error", reject);
  });
}

function entries(input) {
  const list = Array.isArray(input) ? input : [input];
  return list.map((item, i) =>
    item && typeof item === "object" && "document" in item
      ? { source: String(item.source ?? `stdin[${i}]`), document: item.document }
      : { source: `stdin[${i}]`, document: item },
  );
}

// A JSON pointer (/spec/triggers/0/type) as a field path (.spec.triggers[0].type).
function fieldPath(pointer) {
  if (!pointer) return ".";
  return pointer
    .split("/")
    .slice(1)
    .map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"))
    .map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`))
    .join("");
}

// One ajv error as "<field>: <what is wrong>"; a missing required property is named as the
// field it is, not as its parent.
function describe(error) {
  const path = fieldPath(error.instancePath);
  const p = error.params ?? {};
  switch (error.keyword) {
    case "required":
      return `${path === "." ? "" : path}.${p.missingProperty}: required, missing`;
    case "type":
      return `${path}: must be ${p.type}`;
    case "enum":
      return `${path}: must be one of ${JSON.stringify(p.allowedValues)}`;
    default:
      return `${path}: ${error.message ?? error.keyword}`;
  }
}

async function validate({ source, document }) {
  if (!document || typeof document !== "object" || Array.isArray(document)) {
    return [`${source}: not an object`];
  }
  const what = `${document.kind ?? "?"}/${document.metadata?.name ?? "?"}`;
  const model = await modelFor(document.apiVersion, document.kind);
  if (!model) {
    const { apiVersion, kind } = document;
    return [`${source} ${what}: no model for apiVersion ${apiVersion}, kind ${kind}`];
  }
  try {
    new model(document).validate();
  } catch (err) {
    if (!Array.isArray(err.errors)) throw err;
    return err.errors.map((e) => `${source} ${what}: ${describe(e)}`);
  }
  return [];
}

let input;
try {
  input = JSON.parse(await readStdin());
} catch (err) {
  console.error(`validate.js: stdin is not JSON: ${err.message}`);
  process.exit(2);
}
try {
  const errors = [];
  for (const entry of entries(input)) errors.push(...(await validate(entry)));
  for (const line of errors) console.log(line);
  process.exitCode = errors.length ? 1 : 0;
} catch (err) {
  // Not a verdict on the documents (a package missing, a bug): status 2, not 1.
  console.error(err);
  process.exit(2);
}
