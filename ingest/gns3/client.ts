import type { Gns3Server } from './config.js';

/** A GNS3 v3 API answer that was not 2xx: its status and the server's message. */
export class Gns3Error extends Error {
  constructor(message: string, readonly status: number | null) {
    super(message);
    this.name = 'Gns3Error';
  }
}

/**
 * The GNS3 v3 REST API with its JWT: logs in (POST /v3/access/users/authenticate) on first use and
 * again when a token is refused (401: expired, or the server restarted with a new secret).
 */
export class Gns3Client {
  private token: string | null = null;

  constructor(readonly server: Gns3Server) {}

  async jwt(): Promise<string> {
    this.token ??= await this.login();
    return this.token;
  }

  private async login(): Promise<string> {
    const r = await this.fetch('/v3/access/users/authenticate', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: this.server.user, password: this.server.password }) });
    if (r.status === 401) throw new Gns3Error(`GNS3 ${this.server.name}: login refused for ${this.server.user}`, 401);
    if (!r.ok) throw new Gns3Error(`GNS3 ${this.server.name}: login answered ${r.status}`, r.status);
    const body = (await r.json()) as { access_token?: unknown };
    if (typeof body.access_token !== 'string') throw new Gns3Error(`GNS3 ${this.server.name}: login answer has no access_token`, r.status);
    return body.access_token;
  }

  async get<T>(path: string): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const r = await this.fetch(path, { headers: { authorization: `Bearer ${await this.jwt()}` } });
      if (r.status === 401 && attempt === 0) {
        this.token = null;
        continue;
      }
      if (!r.ok) throw new Gns3Error(`GNS3 ${this.server.name}: GET ${path} answered ${r.status}: ${(await r.text()).slice(0, 200)}`, r.status);
      return (await r.json()) as T;
    }
  }

  private async fetch(path: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(this.server.url + path, { ...init, signal: AbortSignal.timeout(this.server.timeoutMs) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      throw new Gns3Error(`GNS3 ${this.server.name} (${this.server.url}) unreachable: ${cause ?? (err as Error).message}`, null);
    }
  }

  /** The WebSocket URL of a notification stream, with the token as its query (how GNS3 authenticates them). */
  async streamUrl(path: string): Promise<string> {
    return `${this.server.url.replace(/^http/, 'ws')}${path}?token=${encodeURIComponent(await this.jwt())}`;
  }

  forgetToken(): void {
    this.token = null;
  }
}
