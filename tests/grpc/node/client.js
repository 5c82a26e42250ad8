// Enqueue a job through Jobwire's gRPC API and watch it until it finishes.
//
// Usage: node client.js HOST:PORT QUEUE
// Reads protos/jobwire/v1/jobwire.proto at run time (no generated code); sends
// $JOBWIRE_TOKEN as a bearer token when set. Prints one JSON line:
// {"id": ..., "statuses": [...], "result": ...}, and exits 0 once the job is complete.
'use strict';

const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const TIMEOUT_MS = 20000;
const [target, queue] = process.argv.slice(2);
if (!target || !queue) {
  console.error('usage: node client.js HOST:PORT QUEUE');
  process.exit(2);
}

const definition = protoLoader.loadSync('jobwire/v1/jobwire.proto', {
  includeDirs: [path.resolve(__dirname, '..', '..', '..', 'protos')],
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
});
const v1 = grpc.loadPackageDefinition(definition).jobwire.v1;
const jobs = new v1.JobService(target, grpc.credentials.createInsecure());
const metadata = new grpc.Metadata();
if (process.env.JOBWIRE_TOKEN) {
  metadata.add('authorization', `Bearer ${process.env.JOBWIRE_TOKEN}`);
}

function fail(message) {
  console.error(message);
  process.exit(1);
}

setTimeout(() => fail(`no result within ${TIMEOUT_MS} ms`), TIMEOUT_MS).unref();

const job = { function: 'greet', kwargs_json: JSON.stringify({ name: 'node' }) };
jobs.Enqueue({ queue, job }, metadata, (error, reply) => {
  if (error) fail(`Enqueue failed: ${error.code} ${error.details}`);
  const id = reply.job.id;
  const statuses = [];
  const call = jobs.WatchJob({ job_id: id, queue }, metadata);
  call.on('data', (snapshot) => {
    statuses.push(snapshot.status);
    if (snapshot.status === 'STATUS_COMPLETE') {
      console.log(JSON.stringify({ id, statuses, result: JSON.parse(snapshot.result_json) }));
      call.cancel();
      process.exit(0);
    } else if (['STATUS_FAILED', 'STATUS_ABORTED'].includes(snapshot.status)) {
      fail(`job ended ${snapshot.status}: ${snapshot.error && snapshot.error.message}`);
    }
  });
  call.on('error', (e) => fail(`WatchJob failed: ${e.code} ${e.details}`));
});
