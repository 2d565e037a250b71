// Starts local-aws-sqs on 127.0.0.1, for the Python interop test only: Debian's boto3 speaks
// SQS's query protocol, which fauxqs does not; local-aws-sqs speaks both. Usage:
// node serve-interop.mjs NPM_DIR PORT. Prints "listening PORT"; stops on SIGTERM.
import { createRequire } from "node:module";
import { join } from "node:path";

const [dir, port] = process.argv.slice(2);
const require = createRequire(join(dir, "package.json"));
const { createSqsServer } = require("local-aws-sqs");
const server = await createSqsServer({
	port: Number(port),
	hostname: "127.0.0.1",
	emulateQueueCreationLifecycle: false, // tests delete and recreate names at once
});
console.log(`listening ${port}`);
const stop = () => {
	server.close?.();
	process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
