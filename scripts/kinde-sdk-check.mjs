// Runs Kinde's own npm client libraries against a devkinde on loopback and
// prints one line per check. devkinde/sdk_test.go starts devkinde and runs
// this script (`make check-kinde-sdks`); it fails on any failed check.
//
// Environment: DEVKINDE_URL (the Kinde domain), DEVKINDE_CALLBACK (a
// callback URL registered for the web client), DEVKINDE_WEB_ID,
// DEVKINDE_WEB_SECRET, KINDE_MANAGEMENT_CLIENT_ID,
// KINDE_MANAGEMENT_CLIENT_SECRET, DEVKINDE_PASSWORD.
import http from 'node:http';
import { createKindeServerClient, GrantType } from '@kinde-oss/kinde-typescript-sdk';
import { init, Permissions, Roles, Users, Organizations, Webhooks } from '@kinde/management-api-js';
import { decodeWebhook } from '@kinde/webhooks';

const domain = process.env.DEVKINDE_URL;
const callback = process.env.DEVKINDE_CALLBACK;
const password = process.env.DEVKINDE_PASSWORD;
let failed = 0;

function check(name, ok, detail = '') {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ': ' + detail : ''}`);
  if (!ok) failed++;
}

async function step(name, fn) {
  try {
    await fn();
  } catch (err) {
    check(name, false, String(err?.stack || err));
  }
}

// A session manager that keeps everything in memory.
function memorySession() {
  const items = new Map();
  return {
    getSessionItem: (k) => items.get(k) ?? null,
    setSessionItem: (k, v) => { items.set(k, v); },
    removeSessionItem: (k) => { items.delete(k); },
    destroySession: () => { items.clear(); },
  };
}

// signIn drives devkinde's sign-in page for authURL and returns the callback
// URL it redirects to.
async function signIn(authURL, email) {
  const page = await fetch(authURL, { redirect: 'manual' });
  const html = await page.text();
  const m = html.match(/name="auth_request" value="([^"]+)"/);
  if (page.status !== 200 || !m) throw new Error(`sign-in page: ${page.status}`);
  const resp = await fetch(new URL('/auth/login', domain), {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ auth_request: m[1], email, password }),
  });
  const loc = resp.headers.get('location');
  if (resp.status !== 302 || !loc) throw new Error(`sign-in post: ${resp.status}`);
  return new URL(loc);
}

const audiences = ['https://api.one.test', 'https://api.two.test'];

// @kinde-oss/kinde-typescript-sdk: the back-end authorization-code flow.
await step('typescript-sdk authorization code', async () => {
  const client = createKindeServerClient(GrantType.AUTHORIZATION_CODE, {
    authDomain: domain,
    clientId: process.env.DEVKINDE_WEB_ID,
    clientSecret: process.env.DEVKINDE_WEB_SECRET,
    redirectURL: callback,
    logoutRedirectURL: callback.replace(/\/callback$/, '/'),
    audience: audiences,
  });
  const session = memorySession();
  const login = await client.login(session);
  check('login URL has no PKCE (confidential client)', !login.searchParams.has('code_challenge'), login.search);
  check('login URL repeats audience', login.searchParams.getAll('audience').length === 2, login.search);

  const back = await signIn(login.toString(), 'alice@acme.test');
  await client.handleRedirectToApp(session, back);
  check('code exchanged with the client secret, without PKCE', await client.isAuthenticated(session));
  const { permissions } = await client.getPermissions(session);
  check('permissions claim', permissions.includes('read:reports'), JSON.stringify(permissions));
  const aud = (await client.getClaim(session, 'aud')).value;
  check('both audiences in the access token', audiences.every((a) => aud.includes(a)), JSON.stringify(aud));
  const org = await client.getOrganization(session);
  check('org_code claim', org.orgCode === 'org_acme', JSON.stringify(org));
  const user = await client.getUserProfile(session);
  check('user profile', user.email === 'alice@acme.test', JSON.stringify(user));
  const before = await client.getToken(session);
  await client.refreshTokens(session);
  check('refresh tokens', (await client.getToken(session)) !== '' && (await client.isAuthenticated(session)),
    before === (await client.getToken(session)) ? 'same access token (devkinde same-token quirk)' : 'new access token');

  const register = await client.register(memorySession());
  check('register URL asks for start_page=registration', register.searchParams.get('start_page') === 'registration',
    register.search);
  const page = await (await fetch(register, { redirect: 'manual' })).text();
  check('start_page=registration opens sign-up', page.includes('name="first_name"'));

  const logout = await client.logout(session);
  const out = await fetch(logout, { redirect: 'manual' });
  check('logout redirects to the allowed URL', out.status === 302, `${out.status} ${logout}`);
});

// @kinde-oss/kinde-typescript-sdk: client credentials.
await step('typescript-sdk client credentials', async () => {
  const m2m = createKindeServerClient(GrantType.CLIENT_CREDENTIALS, {
    authDomain: domain,
    clientId: process.env.KINDE_MANAGEMENT_CLIENT_ID,
    clientSecret: process.env.KINDE_MANAGEMENT_CLIENT_SECRET,
    logoutRedirectURL: callback,
    audience: domain + '/api',
  });
  const tok = await m2m.getToken(memorySession());
  check('M2M token', typeof tok === 'string' && tok.split('.').length === 3);
});

// @kinde/management-api-js (reads KINDE_DOMAIN and KINDE_MANAGEMENT_CLIENT_*).
const hooks = [];
const receiver = http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', () => { hooks.push(body); res.writeHead(200).end(); });
});
await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
const endpoint = `http://127.0.0.1:${receiver.address().port}/hook`;

await step('management-api-js', async () => {
  process.env.KINDE_DOMAIN = domain;
  init();
  const perms = await Permissions.getPermissions({ pageSize: 2 });
  check('list permissions (a page)', perms.permissions.length === 2 && !!perms.next_token, JSON.stringify(perms.next_token));
  const roles = await Roles.getRoles();
  const viewer = roles.roles.find((r) => r.key === 'viewer');
  check('list roles', !!viewer, roles.roles.map((r) => r.key).join(','));
  const holders = await Roles.getRoleUsers({ roleId: viewer.id });
  check('role users', holders.users.length >= 2, JSON.stringify(holders.users.map((u) => u.id)));
  const users = await Users.getUsers();
  const bob = users.users.find((u) => u.email === 'bob@acme.test');
  check('list users', !!bob);
  const rc = await Users.refreshUserClaims({ userId: bob.id });
  check('refresh_claims', rc.code === 'OK' || rc.message !== undefined, JSON.stringify(rc));
  let status = 0;
  try {
    await Users.refreshUserClaims({ userId: 'kp_00000000000000000000000000000000' });
  } catch (err) {
    status = err.status;
  }
  check('refresh_claims for an unknown user is 400, as the spec declares', status === 400, String(status));

  await Webhooks.createWebHook({ requestBody: { endpoint, name: 'sdk check',
    event_types: ['organization.updated', 'user.updated', 'permission.created'] } });
  await Organizations.updateOrganization({ orgCode: 'org_acme', requestBody: { name: 'Acme Inc' } });
  const admin = roles.roles.find((r) => r.key === 'admin');
  await Organizations.createOrganizationUserRole({ orgCode: 'org_acme', userId: bob.id,
    requestBody: { role_id: admin.id } });
  await Permissions.createPermission({ requestBody: { key: 'sdk:check', name: 'SDK check' } });
});

// @kinde/webhooks: decode what devkinde delivered.
await step('webhooks', async () => {
  for (let i = 0; i < 100 && hooks.length < 3; i++) await new Promise((r) => setTimeout(r, 50));
  check('three webhooks delivered', hooks.length >= 3, String(hooks.length));
  const events = {};
  for (const h of hooks) {
    const ev = await decodeWebhook(h, domain);
    check('decodeWebhook verifies against the domain', ev !== null);
    if (ev) events[ev.type] = ev;
  }
  const org = events['organization.updated']?.data?.organization;
  check('organization.updated has external_id (null)', org && 'external_id' in org && org.external_id === null,
    JSON.stringify(org));
  const u = events['user.updated']?.data?.user;
  const roles = u?.organizations?.[0]?.roles;
  check('user.updated organizations[].roles are strings', Array.isArray(roles) && roles.every((r) => typeof r === 'string'),
    JSON.stringify(roles));
  check('event_timestamp on the payload', !!events['permission.created']?.event_timestamp);
  check('a forged webhook is refused', (await decodeWebhook(hooks[0].slice(0, -4) + 'AAAA', domain)) === null);
});

receiver.close();
console.log(failed ? `${failed} check(s) failed` : 'all checks passed');
process.exit(failed ? 1 : 0);
