// Receipts as a client checks them: with an independent JOSE library (npm jose) against the
// router's published keys, and the body hash as the receipt's claims state it.
import crypto from 'node:crypto';
import * as jose from 'jose';

// The router's public keys (its JWK Set), for jose.
export const routerKeys = async (url) => jose.createLocalJWKSet(await (await fetch(`${url}/.well-known/jwks.json`)).json());

// A receipt verified (EdDSA only) against the router's keys: its payload and protected header.
// Rejects when the signature does not hold.
export async function verifiedReceipt(url, jws) {
  return jose.jwtVerify(jws, await routerKeys(url), { algorithms: ['EdDSA'] });
}

// What a receipt's body_sha256 must be for `body` (the exact bytes sent).
export const bodySha256 = (body) => crypto.createHash('sha256').update(body).digest('base64url');
