/**
 * Database clients are expensive (sockets, TLS, topology discovery), and every request
 * carries its own options, so connectors keep one client per distinct connection config
 * for the life of the service and close them all on shutdown.
 */
export class ClientPool<Config, Api> {
  private readonly clients = new Map<string, Api>();

  constructor(
    private readonly create: (config: Config) => Api,
    /** Same key, same client: must cover everything that changes the connection (and a credentials hash). */
    private readonly keyOf: (config: Config) => string,
    private readonly close: (api: Api) => void | Promise<void>,
  ) {}

  get(config: Config): Api {
    const key = this.keyOf(config);
    let api = this.clients.get(key);
    if (!api) {
      api = this.create(config);
      this.clients.set(key, api);
    }
    return api;
  }

  get size(): number {
    return this.clients.size;
  }

  async closeAll(): Promise<void> {
    const all = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(all.map(async (api) => this.close(api)).map((p) => p.catch(() => undefined)));
  }
}
