// The gateway as a Node user would write it: express with cors, jose validate-jwt against the remote JWKS,
// express-rate-limit by client IP and by the verified subject, and http-proxy-middleware forwarding to the
// function with the function key. Same pipeline order as API Management. Comparison point only.
'use strict';
const http = require('node:http');
const express = require('express');
const cors = require('cors');
const { rateLimit } = require('express-rate-limit');
const { createProxyMiddleware } = require('http-proxy-middleware');
const { createRemoteJWKSet, jwtVerify } = require('jose');

const { env, list } = require('./settings');
const limit = (value) => {
  const [calls, seconds] = value.split('/').map(Number);
  return { limit: calls, windowMs: seconds * 1000 };
};

const port = Number(env('PORT', '7180'));
const backendUrl = env('BACKEND_URL');
const functionKey = env('BACKEND_FUNCTION_KEY');
const openidConfigUrl = env('OPENID_CONFIG_URL');
const audiences = list(env('AUDIENCES'));
const allowedOrigins = list(env('ALLOWED_ORIGINS', 'http://127.0.0.1:8080'));
const perIp = limit(env('RATE_LIMIT_PER_IP', '300/120'));
const perSubject = limit(env('RATE_LIMIT_PER_SUBJECT', '15/60'));

const unauthorized = { statusCode: 401, message: 'Unauthorized. Access token is missing or invalid.' };
const tooMany = (req, res, _next, options) => {
  const seconds = Math.ceil((req.rateLimit.resetTime - Date.now()) / 1000);
  res.status(options.statusCode).json({ statusCode: 429, message: `Rate limit is exceeded. Try again in ${seconds} seconds.` });
};

async function main() {
  const metadata = await (await fetch(openidConfigUrl)).json();
  const jwks = createRemoteJWKSet(new URL(metadata.jwks_uri));

  const validateJwt = async (req, res, next) => {
    const auth = req.get('authorization') ?? '';
    const token = auth.startsWith('Bearer ') ? auth.slice(7) : '';
    try {
      const { payload } = await jwtVerify(token, jwks, {
        issuer: metadata.issuer,
        audience: audiences,
        algorithms: ['RS256'],
        clockTolerance: 300,
        requiredClaims: ['exp'],
      });
      req.auth = payload;
      next();
    } catch {
      res.status(401).json(unauthorized);
    }
  };

  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_req, res) => res.send('ok'));
  app.use(cors({ origin: allowedOrigins, credentials: true, maxAge: 120, exposedHeaders: '*' }));
  app.get(
    '/api/hello',
    validateJwt,
    rateLimit({ ...perIp, standardHeaders: 'draft-6', legacyHeaders: false, handler: tooMany }),
    rateLimit({ ...perSubject, keyGenerator: (req) => req.auth.sub, standardHeaders: 'draft-6', legacyHeaders: false, handler: tooMany }),
    createProxyMiddleware({
      target: backendUrl,
      changeOrigin: true,
      xfwd: true,
      // Pooled upstream connections, as the Rust gateway has; without an agent http-proxy closes each one.
      agent: new http.Agent({ keepAlive: true, maxSockets: 256 }),
      proxyTimeout: 30000,
      on: {
        proxyReq: (proxyReq) => {
          proxyReq.removeHeader('x-functions-key');
          proxyReq.setHeader('x-functions-key', functionKey);
        },
        error: (_err, _req, res) => {
          res.writeHead(502, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ statusCode: 502, message: 'Bad gateway.' }));
        },
      },
    }),
  );
  app.listen(port, '127.0.0.1', () => console.log(`node gateway listening on 127.0.0.1:${port}`));
}

main().catch((err) => {
  console.error(`node gateway failed to start: ${err.message}`);
  process.exit(1);
});
