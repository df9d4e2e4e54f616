// Every broadcast method of the official Node SDK (`resend` from npm) against the emulator.
// Run by tests/test_emulator_broadcasts_node.py: node broadcasts.cjs <node_modules dir>, with
// RESEND_BASE_URL and RESEND_API_KEY set. Prints one JSON line of the methods called; exits 1
// on the first wrong answer.
const assert = require("node:assert/strict");
const { Resend } = require(require("node:path").join(process.argv[2], "resend"));

const resend = new Resend(process.env.RESEND_API_KEY);
const called = [];

async function ok(name, promise) {
  const { data, error } = await promise;
  assert.equal(error, null, `${name}: ${JSON.stringify(error)}`);
  called.push(name);
  return data;
}

async function fails(name, promise, statusCode) {
  const { data, error } = await promise;
  assert.equal(data, null, `${name} should fail`);
  assert.equal(error.statusCode, statusCode, `${name}: ${JSON.stringify(error)}`);
  called.push(`${name} (${statusCode})`);
  return error;
}

(async () => {
  const segment = await ok("segments.create", resend.segments.create({ name: "Newsletter" }));
  const topic = await ok(
    "topics.create",
    resend.topics.create({ name: "News", defaultSubscription: "opt_in" }),
  );
  const options = {
    from: "News <news@example.com>",
    segmentId: segment.id,
    subject: "December news",
    html: "<p>Hi {{{FIRST_NAME|there}}}</p>",
    name: "December news",
    topicId: topic.id,
    replyTo: ["replies@example.com"],
    previewText: "What happened",
  };
  const created = await ok("broadcasts.create", resend.broadcasts.create(options));
  const got = await ok("broadcasts.get", resend.broadcasts.get(created.id));
  assert.equal(got.status, "draft");
  assert.equal(got.segment_id, segment.id);
  assert.equal(got.topic_id, topic.id);
  assert.deepEqual(got.reply_to, ["replies@example.com"]);
  assert.equal(got.html, options.html);
  await ok("broadcasts.update", resend.broadcasts.update(created.id, { text: "Hi", subject: "New" }));
  assert.equal((await ok("broadcasts.get", resend.broadcasts.get(created.id))).subject, "New");
  const dup = await ok("broadcasts.duplicate", resend.broadcasts.duplicate(created.id));
  assert.notEqual(dup.id, created.id);
  const listed = await ok("broadcasts.list", resend.broadcasts.list());
  assert.deepEqual(listed.data.map((b) => b.id), [dup.id, created.id]);
  const page = await ok("broadcasts.list", resend.broadcasts.list({ limit: 1 }));
  assert.equal(page.has_more, true);
  const removed = await ok("broadcasts.remove", resend.broadcasts.remove(dup.id));
  assert.equal(removed.deleted, true);
  await ok("broadcasts.send", resend.broadcasts.send(created.id, { scheduledAt: "in 1 hour" }));
  assert.equal((await ok("broadcasts.get", resend.broadcasts.get(created.id))).status, "scheduled");
  await fails("broadcasts.update", resend.broadcasts.update(created.id, { subject: "x" }), 403);
  await ok("broadcasts.cancel", resend.broadcasts.cancel(created.id));
  assert.equal((await ok("broadcasts.get", resend.broadcasts.get(created.id))).status, "canceled");
  const err = await fails("broadcasts.cancel", resend.broadcasts.cancel(created.id), 403);
  assert.equal(err.message, "Only queued or scheduled broadcasts can be canceled");
  const now = await ok("broadcasts.create", resend.broadcasts.create({ ...options, send: true }));
  const recipients = await ok(
    "broadcasts.recipients",
    resend.broadcasts.recipients(now.id, { type: "delivered" }),
  );
  assert.deepEqual(recipients.data, []);
  const links = await ok("broadcasts.clickedLinks", resend.broadcasts.clickedLinks(now.id, { limit: 10 }));
  assert.deepEqual(links.data, []);
  await ok("broadcasts.send", resend.broadcasts.send((await ok("broadcasts.create", resend.broadcasts.create(options))).id));
  await fails("broadcasts.get", resend.broadcasts.get("9f31e56e-3083-46cf-8e96-c6995e0e576a"), 404);
  const methods = Object.getOwnPropertyNames(Object.getPrototypeOf(resend.broadcasts)).filter(
    (m) => m !== "constructor",
  );
  console.log(JSON.stringify({ called, methods }));
})().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
