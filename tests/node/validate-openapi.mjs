// Validates an OpenAPI document (a file path, or stdin) with a published validator against the
// official OpenAPI 3.x schemas, and prints {"valid": bool, "version": "...", "errors": [...]}.
import { readFileSync } from "node:fs";
import { Validator } from "@seriousme/openapi-schema-validator";

const source = process.argv[2] ? readFileSync(process.argv[2], "utf8") : readFileSync(0, "utf8");
const validator = new Validator();
const result = await validator.validate(JSON.parse(source));
console.log(JSON.stringify({ valid: result.valid, version: validator.version, errors: result.errors ?? [] }));
process.exit(result.valid ? 0 : 1);
