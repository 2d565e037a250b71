// Starts the fauxqs SQS emulator on 127.0.0.1 only (its stock CLI listens on every interface
// and logs every request). Usage: node serve.mjs FAUXQS_DIR PORT
// Prints "listening PORT" once the port is open; stops on SIGTERM.
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const [dir, port] = process.argv.slice(2);
const { buildApp } = await import(pathToFileURL(join(dir, "node_modules/fauxqs/dist/app.js")).href);
const app = buildApp({ logger: false, defaultRegion: "us-east-1" });
await app.listen({ port: Number(port), host: "127.0.0.1" });
console.log(`listening ${port}`);
const stop = async () => {
	await app.close();
	process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
