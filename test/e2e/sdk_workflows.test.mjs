// Workflows (v2): create and list through @novu/api, GET/PUT/DELETE over raw HTTP
// (each raw answer is also checked against the SDK's own response schema).
//
// Note: the SDK's push step controls are {subject, body, skip}; a `title` key in
// controlValues is silently stripped by @novu/api before sending, so SDK calls use
// `subject` for the push title. Raw calls also try Herald's `title` spelling.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as components from '@novu/api/models/components/index.js';
import {
  assertErrorBody, expectSdkError, novu, raw, startHerald, uid,
} from './harness.mjs';

const T = { timeout: 30_000 };
const TITLE = 'Hi {{subscriber.firstName}}';
const BODY = 'Order {{payload.orderId}}';

let h;
let sdk;

before(async () => {
  h = await startHerald();
  sdk = novu(h);
}, { timeout: 20_000 });

after(async () => {
  if (h) await h.stop();
});

function pushWorkflow(workflowId, extra = {}) {
  return {
    name: `Workflow ${workflowId}`,
    workflowId,
    active: true,
    steps: [{ name: 'Push', type: 'push', controlValues: { subject: TITLE, body: BODY } }],
    ...extra,
  };
}

function wfPath(workflowId) {
  return `/v2/workflows/${encodeURIComponent(workflowId)}`;
}

test('create and list', T, async () => {
  const workflowId = uid('order-shipped');
  const created = await sdk.workflows.create(pushWorkflow(workflowId));
  const wf = created.result;
  assert.equal(wf.workflowId, workflowId);
  assert.equal(wf.name, `Workflow ${workflowId}`);
  assert.equal(typeof wf.id, 'string');
  assert.equal(typeof wf.slug, 'string');
  assert.equal(wf.active, true);
  assert.equal(wf.status, 'ACTIVE');
  assert.ok(!Number.isNaN(Date.parse(wf.createdAt)));
  assert.ok(!Number.isNaN(Date.parse(wf.updatedAt)));
  assert.equal(wf.steps.length, 1);
  const step = wf.steps[0];
  assert.equal(step.type, 'push');
  assert.equal(step.name, 'Push');
  assert.equal(typeof step.stepId, 'string');
  assert.equal(step.workflowId, workflowId);
  assert.equal(step.controls.values.subject, TITLE);
  assert.equal(step.controls.values.body, BODY);

  const second = uid('second');
  await sdk.workflows.create(pushWorkflow(second, { active: false }));

  const list = await sdk.workflows.list({});
  assert.equal(list.result.totalCount, 2);
  assert.equal(list.result.workflows.length, 2);
  const item = list.result.workflows.find((w) => w.workflowId === workflowId);
  assert.ok(item, 'created workflow is listed');
  assert.equal(item.name, `Workflow ${workflowId}`);
  assert.equal(item.status, 'ACTIVE');
  assert.deepEqual(item.steps.map((s) => s.type), ['push']);
  assert.ok(item.stepTypeOverviews.includes('push'));
  assert.equal(list.result.workflows.find((w) => w.workflowId === second)?.status, 'INACTIVE');

  const page = await sdk.workflows.list({ limit: 1, offset: 0 });
  assert.equal(page.result.workflows.length, 1);
  assert.equal(page.result.totalCount, 2);
  const page2 = await sdk.workflows.list({ limit: 1, offset: 1 });
  assert.equal(page2.result.workflows.length, 1);
  assert.notEqual(page2.result.workflows[0].workflowId, page.result.workflows[0].workflowId);
});

test('raw GET, PUT, DELETE /v2/workflows/{workflowId}', T, async () => {
  const workflowId = uid('raw');
  const created = (await sdk.workflows.create(pushWorkflow(workflowId))).result;

  const get = await raw(h, 'GET', wfPath(workflowId));
  assert.equal(get.status, 200, get.text);
  assert.deepEqual(Object.keys(get.json), ['data']);
  const fetched = components.WorkflowResponseDto$inboundSchema.parse(get.json.data);
  assert.equal(fetched.workflowId, workflowId);
  assert.equal(fetched.id, created.id);
  assert.equal(fetched.steps[0].controls.values.body, BODY);

  const viaSdk = await sdk.workflows.get(workflowId);
  assert.equal(viaSdk.result.workflowId, workflowId);

  // Same wire body the SDK's workflows.update would send.
  const body = components.UpdateWorkflowDto$outboundSchema.parse({
    name: 'Renamed',
    active: false,
    preferences: {},
    steps: [{
      stepId: created.steps[0].stepId,
      name: 'Push',
      type: 'push',
      controlValues: { subject: 'New {{payload.x}}', body: 'Changed' },
    }],
  });
  const put = await raw(h, 'PUT', wfPath(workflowId), { body });
  assert.equal(put.status, 200, put.text);
  assert.deepEqual(Object.keys(put.json), ['data']);
  const updated = components.WorkflowResponseDto$inboundSchema.parse(put.json.data);
  assert.equal(updated.workflowId, workflowId);
  assert.equal(updated.name, 'Renamed');
  assert.equal(updated.active, false);
  assert.equal(updated.status, 'INACTIVE');
  assert.equal(updated.steps.length, 1);
  assert.equal(updated.steps[0].controls.values.subject, 'New {{payload.x}}');
  assert.equal(updated.steps[0].controls.values.body, 'Changed');

  const get2 = await raw(h, 'GET', wfPath(workflowId));
  assert.equal(get2.json.data.name, 'Renamed', 'update was stored');

  const del = await raw(h, 'DELETE', wfPath(workflowId));
  assert.equal(del.status, 204, `DELETE answers 204 like the SDK expects: ${del.text}`);
  assert.equal(del.text, '');

  assertErrorBody(await raw(h, 'GET', wfPath(workflowId)), 404);
  await expectSdkError(sdk.workflows.get(workflowId), { cls: 'ErrorDto', status: 404 });
  const list = await sdk.workflows.list({ limit: 100 });
  assert.ok(!list.result.workflows.some((w) => w.workflowId === workflowId), 'deleted workflow not listed');
  assertErrorBody(await raw(h, 'DELETE', wfPath(workflowId)), 404);
  assertErrorBody(await raw(h, 'PUT', wfPath(workflowId), { body }), 404);
});

function assertNamesStep(msg, names) {
  assert.ok(names.some((n) => msg.includes(n)), `error should name the step (${names.join(' or ')}): ${msg}`);
}

test('a step template that does not parse is a 400 naming the step', T, async () => {
  // Through the SDK (push title travels as `subject`).
  const w1 = uid('broken-sdk');
  const err = await expectSdkError(sdk.workflows.create({
    name: 'Broken', workflowId: w1, active: true,
    steps: [
      { name: 'Fine push', type: 'push', controlValues: { subject: 'ok', body: 'ok' } },
      { name: 'Broken push', stepId: 'broken-step', type: 'push', controlValues: { subject: '{{#if x}}unclosed', body: BODY } },
    ],
  }), { cls: 'ErrorDto', status: 400 });
  assertNamesStep(`${err.message} ${err.body}`, ['Broken push', 'broken-step']);
  assertErrorBody(await raw(h, 'GET', wfPath(w1)), 404);

  // Raw, with Herald's `title` spelling and with an unclosed body expression.
  const cases = [
    { title: '{{#if x}}unclosed', body: BODY },
    { subject: TITLE, body: 'Order {{payload.orderId' },
  ];
  for (const controlValues of cases) {
    const workflowId = uid('broken-raw');
    const res = await raw(h, 'POST', '/v2/workflows', {
      body: {
        name: 'Broken', workflowId, active: true, __source: 'editor',
        steps: [{ name: 'Broken push', stepId: 'broken-step', type: 'push', controlValues }],
      },
    });
    const json = assertErrorBody(res, 400);
    assertNamesStep(JSON.stringify(json.message), ['Broken push', 'broken-step']);
    assertErrorBody(await raw(h, 'GET', wfPath(workflowId)), 404);
  }
});

test('workflow bodies missing required fields are refused', T, async () => {
  for (const body of [
    { workflowId: uid('noname'), steps: [] },
    { name: 'No id', steps: [] },
    { name: 'No steps', workflowId: uid('nosteps') },
    { name: 'Bad step', workflowId: uid('badstep'), steps: [{ type: 'push' }] },
    { name: 'Bad type', workflowId: uid('badtype'), steps: [{ name: 'x', type: 'carrier-pigeon' }] },
  ]) {
    assertErrorBody(await raw(h, 'POST', '/v2/workflows', { body }), 400);
  }
});

test('workflows are per environment', T, async () => {
  const workflowId = uid('envwf');
  await sdk.workflows.create(pushWorkflow(workflowId));
  const prod = novu(h, h.prodKey);
  await expectSdkError(prod.workflows.get(workflowId), { cls: 'ErrorDto', status: 404 });
  const list = await prod.workflows.list({ limit: 100 });
  assert.ok(!list.result.workflows.some((w) => w.workflowId === workflowId));
});
