// The faulty backend whose attend never returns and blocks the event loop,
// as a module the command line can load (tests/conformance_runner_test.ts).
import { faultyBackend } from "./faulty_backend.ts";

export default faultyBackend("spinsInAttend");
