// Baseline for scripts/bench's token-validation row: jose's jwtVerify of RS256 tokens it has not seen before,
// against a JWKS it already holds (the same situation as our "first-seen" case). Prints {"verify_us": mean}.
'use strict';
const { generateKeyPair, exportJWK, createLocalJWKSet, SignJWT, jwtVerify } = require('jose');

async function main() {
  const count = Number(process.argv[2] || 3000);
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  const jwks = createLocalJWKSet({ keys: [jwk] });
  const now = Math.floor(Date.now() / 1000);
  const tokens = [];
  for (let i = 0; i < count; i++) {
    tokens.push(await new SignJWT({ scp: 'accessapp', roles: ['access:test-api'] })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1', typ: 'JWT' })
      .setIssuer('http://127.0.0.1/issuer/v2.0/').setAudience('api').setSubject(`user-${i}`)
      .setIssuedAt(now).setNotBefore(now).setExpirationTime(now + 3600).sign(privateKey));
  }
  const options = { issuer: 'http://127.0.0.1/issuer/v2.0/', audience: 'api', algorithms: ['RS256'], clockTolerance: 300 };
  for (let i = 0; i < Math.min(300, count); i++) await jwtVerify(tokens[i], jwks, options); // warm-up
  const start = process.hrtime.bigint();
  for (const token of tokens) await jwtVerify(token, jwks, options);
  const elapsed = Number(process.hrtime.bigint() - start) / 1000;
  console.log(JSON.stringify({ verify_us: elapsed / count, tokens: count }));
}

main().catch((err) => { console.error(err); process.exit(1); });
