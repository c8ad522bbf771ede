/**
 * The digit pad's service worker: it keeps the page working offline once loaded. On install it
 * fetches the page, its scripts, the samples and the two models into a cache named after the
 * build; afterwards it answers from the network when the server is there (so a rebuilt page is
 * seen at once) and from the cache when it is not. MNIST files never change, so they are served
 * from the cache once fetched.
 *
 * The server puts `const BUILD = {version, precache}` in front of this bundle.
 *
 * @module
 */

// Only what this worker uses of the service-worker scope, so the file type-checks with the
// same libraries as the rest of the repository.
interface ExtendableEvent extends Event {
  waitUntil(promise: Promise<unknown>): void;
}
interface FetchEvent extends ExtendableEvent {
  readonly request: Request;
  respondWith(response: Promise<Response>): void;
}
interface ServiceWorkerScope {
  addEventListener(type: "install" | "activate", listener: (event: ExtendableEvent) => void): void;
  addEventListener(type: "fetch", listener: (event: FetchEvent) => void): void;
  skipWaiting(): Promise<void>;
  clients: { claim(): Promise<void> };
  location: { origin: string };
}

declare const BUILD: { version: string; precache: string[] };

const scope = globalThis as unknown as ServiceWorkerScope;
const PREFIX = "tapegrad-pad-";
const CACHE = PREFIX + BUILD.version;

scope.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(CACHE).then((cache) => cache.addAll(BUILD.precache)).then(() =>
      scope.skipWaiting()
    ),
  );
});

scope.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys().then((keys) =>
      Promise.all(
        keys.filter((k) => k.startsWith(PREFIX) && k !== CACHE).map((k) => caches.delete(k)),
      )
    ).then(() => scope.clients.claim()),
  );
});

/** The network's answer, kept for later; the cached one when the network fails. */
async function networkFirst(request: Request): Promise<Response> {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(request, response.clone());
    return response;
  } catch (error) {
    const cached = await cache.match(request);
    if (cached) return cached;
    throw error;
  }
}

/** The cached answer; the network's (then cached) when there is none yet. */
async function cacheFirst(request: Request): Promise<Response> {
  const cache = await caches.open(CACHE);
  const cached = await cache.match(request);
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok) await cache.put(request, response.clone());
  return response;
}

scope.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== scope.location.origin) return;
  event.respondWith(
    url.pathname.startsWith("/mnist/") ? cacheFirst(event.request) : networkFirst(event.request),
  );
});
