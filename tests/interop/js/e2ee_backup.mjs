// matrix-js-sdk with its Rust crypto against our server: two users talk in an encrypted room,
// Bob sets up cross-signing, secret storage and key backup, logs in on a new device, restores
// the backup and decrypts an old message; a dehydrated device brings the keys of a message
// sent while Bob was away. Prints one JSON line of findings; exits non-zero on
// failure. Usage: node e2ee_backup.mjs BASE_URL PASSWORD (users alice and bob exist).

if (!Promise.withResolvers) {
    Promise.withResolvers = function () {
        let resolve, reject;
        const promise = new Promise((a, b) => { resolve = a; reject = b; });
        return { promise, resolve, reject };
    };
}
const sdk = await import("matrix-js-sdk");
const [baseUrl, password] = process.argv.slice(2);
const log = (...args) => process.stderr.write(args.join(" ") + "\n");
const silent = { debug() {}, info() {}, log() {}, trace() {}, warn() {}, error() {}, getChild() { return silent; } };

async function until(what, check, timeoutMs = 30000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const value = await check();
        if (value) return value;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 100));
    }
}

async function start(user, cryptoCallbacks = {}) {
    const login = await sdk.createClient({ baseUrl }).loginRequest({
        type: "m.login.password", identifier: { type: "m.id.user", user }, password,
    });
    const client = sdk.createClient({
        baseUrl, userId: login.user_id, accessToken: login.access_token, deviceId: login.device_id,
        cryptoCallbacks, logger: silent,
    });
    await client.initRustCrypto({ useIndexedDB: false });
    await client.startClient({ initialSyncLimit: 20 });
    await until(`${user} to sync`, () => client.isInitialSyncComplete());
    return client;
}

function bodies(client, roomId) {
    const room = client.getRoom(roomId);
    if (!room) return [];
    return room.getLiveTimeline().getEvents()
        .filter((e) => e.getType() === "m.room.message")
        .map((e) => e.getContent().body);
}

let recoveryKey = null;
const callbacks = {
    getSecretStorageKey: async ({ keys }) => [Object.keys(keys)[0], recoveryKey.privateKey],
};

const alice = await start("alice");
const bob = await start("bob", callbacks);
const bobId = bob.getUserId();
const { room_id: roomId } = await alice.createRoom({
    invite: [bobId],
    initial_state: [{ type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } }],
});
await until("the invite", () => bob.getRoom(roomId)?.getMyMembership() === "invite");
await bob.joinRoom(roomId);
await until("alice to see bob join", () => alice.getRoom(roomId)?.getMember(bobId)?.membership === "join");

await alice.sendMessage(roomId, { msgtype: "m.text", body: "secret one" });
await until("bob to decrypt", () => bodies(bob, roomId).includes("secret one"));
await bob.sendMessage(roomId, { msgtype: "m.text", body: "secret two" });
await until("alice to decrypt", () => bodies(alice, roomId).includes("secret two"));
log("both decrypted");

const crypto = bob.getCrypto();
await crypto.bootstrapCrossSigning({
    authUploadDeviceSigningKeys: async (makeRequest) => {
        try {
            await makeRequest(null);
        } catch (e) {
            if (e.httpStatus !== 401) throw e;
            await makeRequest({
                type: "m.login.password", identifier: { type: "m.id.user", user: "bob" }, password,
                session: e.data.session,
            });
        }
    },
});
await crypto.bootstrapSecretStorage({
    createSecretStorageKey: async () => {
        recoveryKey = await crypto.createRecoveryKeyFromPassphrase();
        return recoveryKey;
    },
    setupNewSecretStorage: true,
    setupNewKeyBackup: true,
});
const crossSigningReady = await crypto.isCrossSigningReady();
const secretStorageReady = await crypto.isSecretStorageReady();
const version = await until("a backup version", () => crypto.getActiveSessionBackupVersion());
await until("room keys in the backup", async () => {
    const keys = await bob.http.authedRequest("GET", "/room_keys/keys", { version });
    return Object.keys(keys.rooms?.[roomId]?.sessions ?? {}).length > 0;
});
log("backup", version, "holds the room key");

// Bob parks a dehydrated device; a message sent while it is his only other device reaches the
// next device he logs in on through rehydration.
const dehydrationSupported = await crypto.isDehydrationSupported();
await crypto.startDehydration();
await until("alice to see the dehydrated device", async () => {
    const devices = await alice.getCrypto().getUserDeviceInfo([bobId], true);
    return devices.get(bobId)?.size === 2;
});
await alice.sendMessage(roomId, { msgtype: "m.text", body: "secret three" });

const bob2 = await start("bob", callbacks);
const crypto2 = bob2.getCrypto();
await crypto2.loadSessionBackupPrivateKeyFromSecretStorage();
await crypto2.checkKeyBackupAndEnable();
const restored = await crypto2.restoreKeyBackup();
const room2 = await until("the room on the new device", () => bob2.getRoom(roomId));
for (const event of room2.getLiveTimeline().getEvents()) {
    if (event.isDecryptionFailure()) await bob2.decryptEventIfNeeded(event, { isRetry: true });
}
// The new device takes the cross-signing keys from secret storage and signs itself; Alice sees it.
await crypto2.bootstrapCrossSigning({});
log("new device cross-signing ready:", await crypto2.isCrossSigningReady());
await crypto2.crossSignDevice(bob2.getDeviceId());
let rehydratedRoomKeys = 0;
bob2.on("dehydration.RehydrationProgress", (roomKeys) => { rehydratedRoomKeys = roomKeys; });
await crypto2.startDehydration({ rehydrate: true });
const newDevice = await until("the new device to be cross-signed", async () => {
    const status = await crypto2.getDeviceVerificationStatus(bobId, bob2.getDeviceId());
    return status?.crossSigningVerified ? status : null;
}, 10000).catch(() => null);
await until("the new device to decrypt the old messages", () => {
    const seen = bodies(bob2, roomId);
    return seen.includes("secret one") && seen.includes("secret three");
});
const seenByAlice = await until("alice to see the new device signed", async () => {
    await alice.getCrypto().getUserDeviceInfo([bobId], true);
    const status = await alice.getCrypto().getDeviceVerificationStatus(bobId, bob2.getDeviceId());
    return status?.signedByOwner ? status : null;
}, 10000).catch(() => null);

console.log("RESULT " + JSON.stringify({
    crossSigningReady, secretStorageReady, version, imported: restored.imported, total: restored.total,
    oldMessage: bodies(bob2, roomId), dehydrationSupported, rehydratedRoomKeys, newDeviceCrossSigned: newDevice?.crossSigningVerified ?? false,
    newDeviceSignedByOwnerForAlice: seenByAlice?.signedByOwner ?? false,
}));
for (const client of [alice, bob, bob2]) client.stopClient();
process.exit(0);
