// The hello function as a Node user would write it: express, the function key, and jose validating the bearer
// token against the issuer's remote JWKS (what EasyAuth does for the Rust function). Comparison point only.
'use strict';
const crypto = require('node:crypto');
const express = require('express');
const { createRemoteJWKSet, jwtVerify } = require('jose');

const { env, list } = require('./settings');

const port = Number(env('PORT', '7171'));
const functionKeys = list(env('FUNCTION_KEYS')).map((k) => Buffer.from(k));
const openidConfigUrl = env('OPENID_CONFIG_URL');
const audiences = list(env('AUDIENCES'));
const requiredRoles = list(process.env.REQUIRED_ROLES ?? '');

function keyMatches(presented) {
  if (typeof presented !== 'string') return false;
  const candidate = Buffer.from(presented);
  // timingSafeEqual needs equal lengths; comparing the lengths first leaks only the length.
  return functionKeys.some((k) => k.length === candidate.length && crypto.timingSafeEqual(k, candidate));
}

async function main() {
  const metadata = await (await fetch(openidConfigUrl)).json();
  const jwks = createRemoteJWKSet(new URL(metadata.jwks_uri));
  const app = express();
  app.disable('x-powered-by');

  app.get('/healthz', (_req, res) => res.send('ok'));

  app.get('/api/hello', async (req, res) => {
    if (!keyMatches(req.get('x-functions-key') ?? req.query.code)) {
      return res.status(401).end();
    }
    const auth = req.get('authorization') ?? '';
    const token = auth.startsWith('Bearer ') ? auth.slice(7) : '';
    let payload;
    try {
      ({ payload } = await jwtVerify(token, jwks, {
        issuer: metadata.issuer,
        audience: audiences,
        algorithms: ['RS256'],
        clockTolerance: 300,
        requiredClaims: ['exp'],
      }));
    } catch {
      return res.status(401).end();
    }
    const roles = Array.isArray(payload.roles) ? payload.roles : [];
    const scopes = typeof payload.scp === 'string' ? payload.scp.split(' ') : [];
    if (requiredRoles.length > 0 && !requiredRoles.some((r) => roles.includes(r) || scopes.includes(r))) {
      return res.status(403).end();
    }
    res.type('text/plain').send(`Hello World, time and date are ${new Date().toLocaleString()}`);
  });

  app.listen(port, '127.0.0.1', () => console.log(`node function listening on 127.0.0.1:${port}`));
}

main().catch((err) => {
  console.error(`node function failed to start: ${err.message}`);
  process.exit(1);
});
