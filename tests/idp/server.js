#!/usr/bin/env node
// A Keycloak-like OpenID provider for the e2eid end-to-end tests, built on oidc-provider 8.x.
//
//   node tests/idp/server.js --port P --realm NAME [--state FILE] [--test-control]
//                            [--token-ttl SECONDS]
//
// Issuer: http://127.0.0.1:P/realms/NAME with Keycloak's endpoint paths. Prints exactly one line
// "IDP READY <issuer>" on stdout once it listens (everything else goes to stderr). See README.md
// for the users, clients, token contents and the /test/ control endpoints.
//
// Test-only software: users and passwords are fixed, state lives in memory (optionally keys and
// user flags in --state FILE, written with mode 0600 because it holds private keys).

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

// oidc-provider prints its development notices with console.info (stdout); stdout must carry only
// the READY line, so route every console.info/log to stderr.
console.info = (...args) => console.error(...args);
console.log = (...args) => console.error(...args);

// ---------------------------------------------------------------------------------------------
// Command line

function usage(message) {
  if (message) process.stderr.write(`server.js: ${message}\n`);
  process.stderr.write(
    'usage: node server.js --port P --realm NAME [--state FILE] [--test-control]'
      + ' [--token-ttl SECONDS]\n',
  );
  process.exit(2);
}

let args;
try {
  args = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      realm: { type: 'string', default: 'e2eid' },
      state: { type: 'string' },
      'test-control': { type: 'boolean', default: false },
      'token-ttl': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  }).values;
} catch (err) {
  usage(err.message);
}
if (args.help) usage();
const requestedPort = Number(args.port);
if (!Number.isInteger(requestedPort) || requestedPort < 0 || requestedPort > 65535) {
  usage(`invalid --port ${args.port}`);
}
if (!/^[A-Za-z0-9._-]{1,64}$/.test(args.realm)) usage(`invalid --realm ${args.realm}`);
const REALM = args.realm;
const PREFIX = `/realms/${REALM}`;
const TEST_CONTROL = args['test-control'];
const STATE_FILE = args.state ? path.resolve(args.state) : undefined;

// Keycloak endpoint paths, relative to the issuer.
const OIDC = '/protocol/openid-connect';
const ROUTES = {
  authorization: `${OIDC}/auth`,
  device_authorization: `${OIDC}/auth/device`,
  code_verification: '/device',
  token: `${OIDC}/token`,
  jwks: `${OIDC}/certs`,
  userinfo: `${OIDC}/userinfo`,
  end_session: `${OIDC}/logout`,
  revocation: `${OIDC}/revoke`,
  introspection: `${OIDC}/token/introspect`,
  pushed_authorization_request: `${OIDC}/ext/par/request`,
  backchannel_authentication: `${OIDC}/ext/ciba/auth`,
  registration: '/clients-registrations/openid-connect',
};
const LOGIN_ACTIONS = `${PREFIX}/login-actions/`;

// ---------------------------------------------------------------------------------------------
// Users (fixed, Keycloak-like: the subject is a lowercase UUID)

const USERS = [
  {
    id: '6c1f6a3e-8b1d-4c55-9b3e-a11ce0000001',
    login: 'alice',
    password: 'alice-password',
    givenName: 'Alice',
    familyName: 'Smith',
    roles: ['user'],
    groups: ['/engineering'],
  },
  {
    id: '2b0b2b0b-7c2d-4f6e-8a1b-b0b000000002',
    login: 'bob',
    password: 'bob-password',
    givenName: 'Bob',
    familyName: 'Jones',
    roles: ['user'],
    groups: ['/sales'],
  },
  {
    id: '9ad31a1e-4e7f-4d2a-b6c3-ad3100000003',
    login: 'admin',
    password: 'admin-password',
    givenName: 'Ada',
    familyName: 'Admin',
    roles: ['user', 'e2eid-admin'],
    groups: ['/admins'],
  },
].map((u) => ({
  ...u,
  name: `${u.givenName} ${u.familyName}`,
  email: `${u.login}@example.com`,
  enabled: true,
}));
const usersById = new Map(USERS.map((u) => [u.id, u]));
const usersByLogin = new Map(USERS.map((u) => [u.login, u]));

function sha256(data) {
  return crypto.createHash('sha256').update(data).digest();
}

function passwordMatches(user, password) {
  // Compare digests so the comparison is constant-time whatever the lengths.
  return crypto.timingSafeEqual(sha256(String(password)), sha256(user.password));
}

function userClaims(user) {
  return {
    sub: user.id,
    name: user.name,
    given_name: user.givenName,
    family_name: user.familyName,
    preferred_username: user.login,
    email: user.email,
    email_verified: true,
    realm_access: { roles: [...user.roles] },
    groups: [...user.groups],
  };
}

function publicUser(user) {
  return {
    id: user.id,
    login: user.login,
    name: user.name,
    email: user.email,
    roles: user.roles,
    groups: user.groups,
    enabled: user.enabled,
  };
}

// ---------------------------------------------------------------------------------------------
// Signing keys (RS256, generated at start or loaded from --state)

function b64u(buf) {
  return Buffer.from(buf).toString('base64url');
}

function jwkThumbprint(jwk) {
  let members;
  switch (jwk.kty) {
    case 'RSA':
      members = { e: jwk.e, kty: jwk.kty, n: jwk.n };
      break;
    case 'EC':
      members = { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y };
      break;
    case 'OKP':
      members = { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
      break;
    default:
      throw new Error(`unsupported JWK kty ${jwk.kty}`);
  }
  return b64u(sha256(JSON.stringify(members)));
}

function newSigningKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: jwkThumbprint(jwk), alg: 'RS256', use: 'sig' };
}

// Newest key first: oidc-provider signs with the first matching key.
let signingKeys = [];
let cookieKeys = [];

function loadState() {
  if (!STATE_FILE || !fs.existsSync(STATE_FILE)) return false;
  const state = JSON.parse(fs.readFileSync(STATE_FILE, 'utf8'));
  if (!Array.isArray(state.keys) || state.keys.length === 0) {
    throw new Error(`${STATE_FILE}: no signing keys`);
  }
  signingKeys = state.keys;
  cookieKeys = Array.isArray(state.cookie_keys)
    ? state.cookie_keys
    : [b64u(crypto.randomBytes(32))];
  for (const login of state.disabled_users || []) {
    const user = usersByLogin.get(login);
    if (user) user.enabled = false;
  }
  return true;
}

function saveState(issuer) {
  if (!STATE_FILE) return;
  const state = {
    issuer,
    keys: signingKeys,
    cookie_keys: cookieKeys,
    disabled_users: USERS.filter((u) => !u.enabled).map((u) => u.login),
  };
  const tmp = `${STATE_FILE}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, STATE_FILE);
}

// ---------------------------------------------------------------------------------------------
// Storage adapter: an unbounded in-memory store shared by every Provider instance (the provider is
// rebuilt when keys rotate; sessions, grants and tokens survive that).

const storage = new Map(); // key -> { value, expiresAt (ms) }

function storeGet(key) {
  const entry = storage.get(key);
  if (!entry) return undefined;
  if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
    storage.delete(key);
    return undefined;
  }
  return entry.value;
}

function storeSet(key, value, expiresIn) {
  storage.set(key, {
    value,
    expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : undefined,
  });
}

// Drop expired entries once a minute so long test runs do not grow without bound.
const sweeper = setInterval(() => {
  const now = Date.now();
  for (const [key, entry] of storage) {
    if (entry.expiresAt !== undefined && entry.expiresAt <= now) storage.delete(key);
  }
}, 60_000);
sweeper.unref();

const GRANTABLE = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
]);

class MapAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    if (this.model === 'Session') storeSet(`sessionUid:${payload.uid}`, id, expiresIn);
    if (GRANTABLE.has(this.model) && payload.grantId) {
      const grantKey = `grant:${payload.grantId}`;
      const members = storeGet(grantKey) || [];
      members.push(key);
      storeSet(grantKey, members, expiresIn);
    }
    if (payload.userCode) storeSet(`userCode:${payload.userCode}`, id, expiresIn);
    storeSet(key, payload, expiresIn);
  }

  async find(id) {
    return storeGet(this.key(id));
  }

  async findByUid(uid) {
    const id = storeGet(`sessionUid:${uid}`);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode(userCode) {
    const id = storeGet(`userCode:${userCode}`);
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id) {
    const payload = storeGet(this.key(id));
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    storage.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    const grantKey = `grant:${grantId}`;
    for (const key of storeGet(grantKey) || []) storage.delete(key);
    storage.delete(grantKey);
  }
}

// ---------------------------------------------------------------------------------------------
// Provider configuration

const CLIENT_IDS = ['e2eid-device', 'e2eid-admin-cli', 'other-client'];
const PUBLIC_CLIENT_GRANTS = [
  'authorization_code',
  'refresh_token',
  'urn:ietf:params:oauth:grant-type:device_code',
];
// application_type "native" makes oidc-provider compare loopback redirect URIs without the port
// (RFC 8252 section 7.3): http://127.0.0.1:<any port>/callback matches the registered one.
const CLIENTS = CLIENT_IDS.map((clientId) => ({
  client_id: clientId,
  client_name: clientId,
  application_type: 'native',
  token_endpoint_auth_method: 'none',
  grant_types: PUBLIC_CLIENT_GRANTS,
  response_types: ['code'],
  redirect_uris: ['http://127.0.0.1/callback', 'http://[::1]/callback'],
  id_token_signed_response_alg: 'RS256',
}));

const ACCESS_TOKEN_TTL = 300; // Keycloak's default access token lifespan
const MAX_TOKEN_TTL = 86400;

function parseTtl(value) {
  const n = Number(value);
  return Number.isInteger(n) && n >= 1 && n <= MAX_TOKEN_TTL ? n : undefined;
}

// Lifetime of access and ID tokens: --token-ttl, or POST /test/ttl?seconds=N at run time (the
// expired-token tests shorten it for one login).
let defaultTokenTtl = ACCESS_TOKEN_TTL;
if (args['token-ttl'] !== undefined) {
  defaultTokenTtl = parseTtl(args['token-ttl']);
  if (defaultTokenTtl === undefined) usage(`invalid --token-ttl ${args['token-ttl']}`);
}
let tokenTtl = defaultTokenTtl;
const DPOP_ALGS = ['ES256', 'ES384', 'EdDSA', 'RS256', 'PS256'];

function escapeHtml(value) {
  return String(value).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c],
  );
}

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(title)}</title>
</head>
<body>
<h1 id="kc-page-title">${escapeHtml(title)}</h1>
${body}
</body>
</html>
`;
}

function buildProvider(issuer) {
  const accountResource = `${issuer}/account`;

  const configuration = {
    adapter: MapAdapter,
    clients: CLIENTS,
    jwks: { keys: signingKeys },
    cookies: {
      keys: cookieKeys,
      names: {
        session: 'KEYCLOAK_SESSION',
        interaction: 'KC_INTERACTION',
        resume: 'KC_INTERACTION_RESUME',
      },
    },
    async findAccount(ctx, sub) {
      const user = usersById.get(sub);
      // A disabled (or unknown) account fails every grant that loads it: code, device code and
      // refresh token grants answer invalid_grant.
      if (!user || !user.enabled) return undefined;
      return {
        accountId: user.id,
        async claims(use, scope, claims) {
          const out = userClaims(user);
          // Like Keycloak's oidc-claims-param-value-idtoken-mapper: echo the requested values.
          if (use === 'id_token' && claims) {
            for (const name of ['keyauth', 'acme_aud']) {
              const requested = claims[name];
              if (requested && typeof requested === 'object' && 'value' in requested) {
                out[name] = requested.value;
              }
            }
          }
          return out;
        },
      };
    },
    claims: {
      openid: [
        'sub',
        'name',
        'preferred_username',
        'email',
        'email_verified',
        'realm_access',
        'groups',
      ],
      profile: ['name', 'given_name', 'family_name', 'preferred_username'],
      email: ['email', 'email_verified'],
      roles: ['realm_access', 'groups'],
      keyauth: null,
      acme_aud: null,
    },
    scopes: ['openid', 'offline_access', 'profile', 'email', 'roles'],
    responseTypes: ['code'],
    clientAuthMethods: ['none', 'client_secret_basic', 'client_secret_post'],
    conformIdTokenClaims: false,
    routes: ROUTES,
    interactions: {
      url(ctx, interaction) {
        return `${LOGIN_ACTIONS}${interaction.uid}`;
      },
    },
    pkce: { methods: ['S256'], required: () => true },
    // Refresh tokens: every client allowed the refresh_token grant gets one (no offline_access
    // needed, as with Keycloak), and every refresh rotates it (the old one is consumed; reusing
    // a consumed refresh token revokes the whole grant).
    async issueRefreshToken(ctx, client) {
      return client.grantTypeAllowed('refresh_token');
    },
    rotateRefreshToken: true,
    features: {
      devInteractions: { enabled: false },
      claimsParameter: { enabled: true },
      deviceFlow: { enabled: true },
      dPoP: { enabled: true },
      revocation: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      // The built-in userinfo endpoint refuses access tokens that have an audience; ours are all
      // JWTs with one (Keycloak-like), so server.js serves userinfo itself.
      userinfo: { enabled: false },
      resourceIndicators: {
        enabled: true,
        async defaultResource(ctx, client, oneOf) {
          if (oneOf) return oneOf[0];
          return accountResource;
        },
        async useGrantedResource() {
          return true;
        },
        async getResourceServerInfo(ctx, resourceIndicator) {
          return {
            scope: 'openid profile email roles offline_access',
            audience: resourceIndicator === accountResource ? 'account' : resourceIndicator,
            accessTokenTTL: tokenTtl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    formats: {
      customizers: {
        async jwt(ctx, token, jwt) {
          // Keycloak-like access token claims.
          const { payload } = jwt;
          payload.azp = token.clientId;
          payload.typ = 'Bearer';
          if (token.sid) payload.sid = token.sid;
          const user = usersById.get(token.accountId);
          if (user) {
            const claims = userClaims(user);
            delete claims.sub;
            Object.assign(payload, claims);
          }
        },
      },
    },
    enabledJWA: { dPoPSigningAlgValues: DPOP_ALGS },
    discovery: {
      userinfo_endpoint: `${issuer}${ROUTES.userinfo}`,
      claim_types_supported: ['normal'],
    },
    ttl: {
      AccessToken: () => tokenTtl,
      AuthorizationCode: 60,
      ClientCredentials: ACCESS_TOKEN_TTL,
      DeviceCode: 600,
      BackchannelAuthenticationRequest: 600,
      Grant: 36000,
      IdToken: () => tokenTtl,
      Interaction: 1800,
      RefreshToken: 1800,
      Session: 36000,
    },
    async renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = page(
        'We are sorry...',
        `<p id="error-summary" class="error">${escapeHtml(out.error)}: ${escapeHtml(
          out.error_description || '',
        )}</p>`,
      );
    },
  };

  const provider = new Provider(issuer, configuration);

  provider.use(async (ctx, next) => {
    await next();
    if (ctx.oidc?.route === 'jwks') ctx.set('Cache-Control', 'public, max-age=60');
  });

  const logError = (event) => (ctx, err) => {
    const route = ctx?.oidc?.route || '?';
    const detail = err.error_detail || err.error_description;
    process.stderr.write(
      `idp: ${event} route=${route} ${err.name}: ${err.message}${detail ? ` (${detail})` : ''}\n`,
    );
  };
  provider.on('server_error', (ctx, err) => {
    process.stderr.write(`idp: server_error ${err.stack || err}\n`);
  });
  for (const event of [
    'authorization.error',
    'grant.error',
    'end_session.error',
    'revocation.error',
    'backchannel.error',
  ]) {
    provider.on(event, logError(event));
  }
  return provider;
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers

const MAX_BODY = 64 * 1024;

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res, status, contentType, body, headers = {}) {
  res.writeHead(status, {
    'Content-Type': contentType,
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(body);
}

function sendJson(res, status, value, headers = {}) {
  send(res, status, 'application/json; charset=utf-8', `${JSON.stringify(value)}\n`, headers);
}

function sendHtml(res, status, html) {
  send(res, status, 'text/html; charset=utf-8', html);
}

// ---------------------------------------------------------------------------------------------
// Interactions: login form and consent page

function loginPage(uid, clientId, error, login) {
  const action = `${LOGIN_ACTIONS}${escapeHtml(uid)}/authenticate`;
  const errorHtml = error ? `<p id="input-error" class="error">${escapeHtml(error)}</p>\n` : '';
  return page(
    `Sign in to ${REALM}`,
    `<p id="kc-client">Client: ${escapeHtml(clientId)}</p>
${errorHtml}<form id="kc-form-login" method="post" action="${action}">
<label for="login">Username or email</label>
<input id="login" name="login" type="text" autocomplete="username"
 value="${escapeHtml(login || '')}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password">
<input type="submit" id="kc-login" value="Sign In">
</form>`,
  );
}

function consentPage(uid, clientId, details) {
  const scopes = [...(details.missingOIDCScope || [])];
  for (const list of Object.values(details.missingResourceScopes || {})) scopes.push(...list);
  const items = [...new Set(scopes)]
    .concat((details.missingOIDCClaims || []).map((c) => `claim ${c}`))
    .map((s) => `<li>${escapeHtml(s)}</li>`)
    .join('\n');
  return page(
    `Grant access to ${clientId}`,
    `<p>Do you grant these access privileges?</p>
<ul id="kc-oauth-scopes">
${items}
</ul>
<form id="kc-oauth-consent" method="post" action="${LOGIN_ACTIONS}${escapeHtml(uid)}/consent">
<input type="submit" name="accept" id="kc-login" value="Yes">
<input type="submit" name="cancel" id="kc-cancel" value="No">
</form>`,
  );
}

function errorPage(res, status, message) {
  return sendHtml(
    res,
    status,
    page('We are sorry...', `<p id="error-summary" class="error">${escapeHtml(message)}</p>`),
  );
}

function findUser(login) {
  const name = String(login || '')
    .trim()
    .toLowerCase();
  return usersByLogin.get(name) || USERS.find((u) => u.email === name);
}

async function handleInteraction(provider, req, res, rest) {
  const [uid, action, extra] = rest.split('/');
  if (!uid || extra !== undefined) return sendHtml(res, 404, page('Not found', ''));

  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch (err) {
    return errorPage(
      res,
      400,
      `Your login attempt timed out or the session was lost (${err.message}).`,
    );
  }
  if (details.uid !== uid) {
    return errorPage(res, 400, 'Interaction mismatch.');
  }
  const { prompt, params } = details;
  const clientId = params.client_id;

  if (req.method === 'GET' && action === undefined) {
    if (prompt.name === 'login') return sendHtml(res, 200, loginPage(uid, clientId));
    if (prompt.name === 'consent') {
      return sendHtml(res, 200, consentPage(uid, clientId, prompt.details));
    }
    return sendHtml(res, 501, page('Not implemented', `<p>prompt ${escapeHtml(prompt.name)}</p>`));
  }
  if (req.method !== 'POST') return sendHtml(res, 405, page('Method not allowed', ''));

  const form = new URLSearchParams(await readBody(req));

  if (action === 'authenticate') {
    if (prompt.name !== 'login') {
      return errorPage(res, 400, 'Not a login step.');
    }
    const login = form.get('login') || '';
    const user = findUser(login);
    // Always compare a password, so a wrong user name costs the same as a wrong password.
    const ok = passwordMatches(user || { password: '\u0000' }, form.get('password') || '');
    if (!user || !ok) {
      process.stderr.write(`idp: login failed for "${login}"\n`);
      return sendHtml(res, 200, loginPage(uid, clientId, 'Invalid username or password.', login));
    }
    if (!user.enabled) {
      process.stderr.write(`idp: login refused for disabled user "${user.login}"\n`);
      return sendHtml(
        res,
        200,
        loginPage(uid, clientId, 'Account is disabled, contact your admin.', login),
      );
    }
    return provider.interactionFinished(
      req,
      res,
      { login: { accountId: user.id, amr: ['pwd'] } },
      { mergeWithLastSubmission: false },
    );
  }

  if (action === 'consent') {
    if (prompt.name !== 'consent') {
      return errorPage(res, 400, 'Not a consent step.');
    }
    if (!form.has('accept')) {
      return provider.interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'End-User aborted interaction' },
        { mergeWithLastSubmission: false },
      );
    }
    const { accountId } = details.session;
    let { grantId } = details;
    const grant = (grantId && (await provider.Grant.find(grantId)))
      || new provider.Grant({ accountId, clientId });
    const d = prompt.details;
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(d.missingResourceScopes || {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    grantId = await grant.save();
    return provider.interactionFinished(
      req,
      res,
      { consent: { grantId } },
      { mergeWithLastSubmission: true },
    );
  }

  return sendHtml(res, 404, page('Not found', ''));
}

// ---------------------------------------------------------------------------------------------
// Userinfo (Keycloak accepts its JWT access tokens there; DPoP-bound ones need a DPoP proof)

function verifyJws(alg, jwkOrKey, signingInput, signature) {
  const key = jwkOrKey instanceof crypto.KeyObject
    ? jwkOrKey
    : crypto.createPublicKey({ key: jwkOrKey, format: 'jwk' });
  const data = Buffer.from(signingInput);
  switch (alg) {
    case 'RS256':
      return key.asymmetricKeyType === 'rsa' && crypto.verify('sha256', data, key, signature);
    case 'PS256':
      return (
        key.asymmetricKeyType === 'rsa'
        && crypto.verify(
          'sha256',
          data,
          { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 },
          signature,
        )
      );
    case 'ES256':
    case 'ES384': {
      const crv = alg === 'ES256' ? 'prime256v1' : 'secp384r1';
      if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails.namedCurve !== crv) {
        return false;
      }
      return crypto.verify(
        alg === 'ES256' ? 'sha256' : 'sha384',
        data,
        { key, dsaEncoding: 'ieee-p1363' },
        signature,
      );
    }
    case 'EdDSA':
      return key.asymmetricKeyType === 'ed25519' && crypto.verify(null, data, key, signature);
    default:
      return false;
  }
}

function decodeJws(token) {
  const parts = String(token).split('.');
  if (parts.length !== 3) throw new Error('not a compact JWS');
  const header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
  const payload = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  return {
    header,
    payload,
    signingInput: `${parts[0]}.${parts[1]}`,
    signature: Buffer.from(parts[2], 'base64url'),
  };
}

const seenDpopJtis = new Map(); // jti -> expiry (ms)

function userinfoError(res, scheme, error, description) {
  const algs = scheme === 'DPoP' ? `, algs="${DPOP_ALGS.join(' ')}"` : '';
  sendJson(
    res,
    401,
    { error, error_description: description },
    {
      'WWW-Authenticate':
        `${scheme} realm="${REALM}", error="${error}", error_description="${description}"${algs}`,
    },
  );
}

async function handleUserinfo(issuer, req, res) {
  if (req.method !== 'GET' && req.method !== 'POST') {
    return sendJson(res, 405, { error: 'invalid_request' });
  }
  const authorization = req.headers.authorization || '';
  const match = /^(Bearer|DPoP) +([A-Za-z0-9._~+/-]+=*)$/i.exec(authorization);
  if (!match) return userinfoError(res, 'Bearer', 'invalid_request', 'no access token provided');
  const scheme = match[1].toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer';
  const token = match[2];
  const now = Math.floor(Date.now() / 1000);

  let at;
  try {
    at = decodeJws(token);
  } catch {
    return userinfoError(res, scheme, 'invalid_token', 'malformed access token');
  }
  const key = signingKeys.find((k) => k.kid === at.header.kid);
  if (
    at.header.alg !== 'RS256'
    || at.header.typ !== 'at+jwt'
    || !key
    || !verifyJws('RS256', { kty: key.kty, n: key.n, e: key.e }, at.signingInput, at.signature)
  ) {
    return userinfoError(res, scheme, 'invalid_token', 'access token signature invalid');
  }
  const claims = at.payload;
  if (claims.iss !== issuer || typeof claims.exp !== 'number' || claims.exp <= now) {
    return userinfoError(res, scheme, 'invalid_token', 'access token expired or foreign');
  }
  if (!String(claims.scope || '').split(' ').includes('openid')) {
    return sendJson(res, 403, {
      error: 'insufficient_scope',
      error_description: 'openid scope missing',
    });
  }

  const jkt = claims.cnf?.jkt;
  if (jkt) {
    if (scheme !== 'DPoP') {
      return userinfoError(res, 'DPoP', 'invalid_token', 'DPoP-bound token needs the DPoP scheme');
    }
    const proofValue = req.headers.dpop;
    let proof;
    try {
      if (!proofValue || proofValue.includes(',')) throw new Error('missing');
      proof = decodeJws(proofValue);
    } catch {
      return userinfoError(res, 'DPoP', 'invalid_dpop_proof', 'DPoP proof missing or malformed');
    }
    const { header, payload } = proof;
    const expectedHtu = `${issuer}${ROUTES.userinfo}`;
    let valid = false;
    try {
      valid = header.typ === 'dpop+jwt'
        && DPOP_ALGS.includes(header.alg)
        && header.jwk && typeof header.jwk === 'object' && !('d' in header.jwk)
        && verifyJws(header.alg, header.jwk, proof.signingInput, proof.signature)
        && payload.htm === req.method
        && typeof payload.htu === 'string' && payload.htu.split(/[?#]/)[0] === expectedHtu
        && typeof payload.iat === 'number' && Math.abs(payload.iat - now) <= 300
        && typeof payload.jti === 'string' && payload.jti.length > 0
        && payload.ath === b64u(sha256(token))
        && jwkThumbprint(header.jwk) === jkt;
    } catch {
      valid = false;
    }
    if (!valid) return userinfoError(res, 'DPoP', 'invalid_dpop_proof', 'DPoP proof invalid');
    for (const [seen, expiry] of seenDpopJtis) if (expiry <= Date.now()) seenDpopJtis.delete(seen);
    if (seenDpopJtis.has(payload.jti)) {
      return userinfoError(res, 'DPoP', 'invalid_dpop_proof', 'DPoP proof replayed');
    }
    seenDpopJtis.set(payload.jti, Date.now() + 600_000);
  }

  const user = usersById.get(claims.sub);
  if (!user || !user.enabled) {
    return userinfoError(res, scheme, 'invalid_token', 'user not found or disabled');
  }
  return sendJson(res, 200, userClaims(user));
}

// ---------------------------------------------------------------------------------------------
// Test control endpoints (--test-control only)

async function handleTestControl(state, req, res, url) {
  const parts = url.pathname.split('/').filter(Boolean); // ['test', ...]
  if (req.method === 'POST' && parts.length === 2 && parts[1] === 'rotate-keys') {
    const dropOld = ['1', 'true', 'yes'].includes(url.searchParams.get('drop_old') || '');
    const key = newSigningKey();
    signingKeys = dropOld ? [key] : [key, ...signingKeys];
    state.provider = buildProvider(state.issuer);
    state.callback = state.provider.callback();
    saveState(state.issuer);
    process.stderr.write(`idp: rotated signing key, new kid ${key.kid}, drop_old=${dropOld}\n`);
    return sendJson(res, 200, { kid: key.kid, kids: signingKeys.map((k) => k.kid) });
  }
  if (req.method === 'POST' && parts.length === 2 && parts[1] === 'ttl') {
    const requested = url.searchParams.get('seconds');
    const ttl = requested === null ? defaultTokenTtl : parseTtl(requested);
    if (ttl === undefined) {
      return sendJson(res, 400, { error: `seconds must be 1 to ${MAX_TOKEN_TTL}` });
    }
    tokenTtl = ttl;
    process.stderr.write(`idp: access and ID tokens now live ${ttl} s\n`);
    return sendJson(res, 200, { seconds: ttl });
  }
  if (req.method === 'GET' && parts.length === 2 && parts[1] === 'users') {
    return sendJson(res, 200, USERS.map(publicUser));
  }
  if (
    req.method === 'POST'
    && parts.length === 4
    && parts[1] === 'users'
    && (parts[3] === 'disable' || parts[3] === 'enable')
  ) {
    const user = usersByLogin.get(decodeURIComponent(parts[2]));
    if (!user) return sendJson(res, 404, { error: 'unknown user' });
    user.enabled = parts[3] === 'enable';
    saveState(state.issuer);
    process.stderr.write(`idp: user ${user.login} ${parts[3]}d\n`);
    return sendJson(res, 200, publicUser(user));
  }
  return sendJson(res, 404, { error: 'not found' });
}

// ---------------------------------------------------------------------------------------------
// Server

async function main() {
  let loaded = false;
  try {
    loaded = loadState();
  } catch (err) {
    process.stderr.write(`server.js: cannot read --state ${STATE_FILE}: ${err.message}\n`);
    process.exit(1);
  }
  if (!loaded) {
    signingKeys = [newSigningKey()];
    cookieKeys = [b64u(crypto.randomBytes(32))];
  }

  // provider and its request handler are swapped together when the signing keys rotate.
  const state = { provider: undefined, callback: undefined, issuer: undefined };

  const server = http.createServer(async (req, res) => {
    try {
      const url = new URL(req.url, 'http://127.0.0.1');
      const { pathname } = url;
      if (TEST_CONTROL && (pathname === '/test' || pathname.startsWith('/test/'))) {
        await handleTestControl(state, req, res, url);
      } else if (pathname.startsWith(LOGIN_ACTIONS)) {
        await handleInteraction(state.provider, req, res, pathname.slice(LOGIN_ACTIONS.length));
      } else if (pathname === `${PREFIX}${ROUTES.userinfo}`) {
        await handleUserinfo(state.issuer, req, res);
      } else if (pathname === PREFIX || pathname.startsWith(`${PREFIX}/`)) {
        // Mount oidc-provider under the issuer path.
        req.originalUrl = req.url;
        req.url = req.url.slice(PREFIX.length) || '/';
        await state.callback(req, res);
      } else {
        sendJson(res, 404, { error: 'not found' });
      }
    } catch (err) {
      process.stderr.write(`idp: request failed: ${err.stack || err}\n`);
      if (!res.headersSent) sendJson(res, 500, { error: 'server_error' });
      else res.destroy();
    }
  });

  server.on('error', (err) => {
    process.stderr.write(`server.js: ${err.message}\n`);
    process.exit(1);
  });

  server.listen(requestedPort, '127.0.0.1', () => {
    const { port } = server.address();
    state.issuer = `http://127.0.0.1:${port}${PREFIX}`;
    state.provider = buildProvider(state.issuer);
    state.callback = state.provider.callback();
    saveState(state.issuer);
    process.stdout.write(`IDP READY ${state.issuer}\n`);
  });

  let stopping = false;
  const stop = (signal) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`idp: ${signal}, shutting down\n`);
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main();
