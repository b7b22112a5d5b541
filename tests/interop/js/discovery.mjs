// How Element checks a homeserver before logging in: matrix-js-sdk's AutoDiscovery validates a
// homeserver URL (its /versions must list a spec version the SDK supports). Prints one JSON line
// with the verdict. Usage: node discovery.mjs BASE_URL

if (!Promise.withResolvers) {
    Promise.withResolvers = function () {
        let resolve, reject;
        const promise = new Promise((a, b) => { resolve = a; reject = b; });
        return { promise, resolve, reject };
    };
}
const { AutoDiscovery } = await import("matrix-js-sdk");
const [baseUrl] = process.argv.slice(2);
const config = await AutoDiscovery.fromDiscoveryConfig({ "m.homeserver": { base_url: baseUrl } });
console.log("RESULT " + JSON.stringify(config["m.homeserver"]));
