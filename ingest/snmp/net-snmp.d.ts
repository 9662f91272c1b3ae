// Just the part of net-snmp's API that ingest/snmp uses (the package ships no types; @types/net-snmp
// lags the library and would pin its version, so a narrow local declaration is kept instead).
declare module 'net-snmp' {
  import type { EventEmitter } from 'node:events';

  export interface Varbind {
    oid: string;
    type: number;
    value: unknown;
  }

  export interface SessionOptions {
    port?: number;
    trapPort?: number;
    retries?: number;
    timeout?: number;
    backoff?: number;
    transport?: 'udp4' | 'udp6';
    version?: number;
    idBitsSize?: 16 | 32;
    context?: string;
    engineID?: string;
  }

  export interface User {
    name: string;
    level: number;
    authProtocol?: number;
    authKey?: string;
    privProtocol?: number;
    privKey?: string;
  }

  export type ResponseCb<T> = (error: Error | null, result: T) => void;

  export interface Session extends EventEmitter {
    get(oids: string[], cb: ResponseCb<Varbind[]>): Session;
    getNext(oids: string[], cb: ResponseCb<Varbind[]>): Session;
    getBulk(oids: string[], nonRepeaters: number, maxRepetitions: number, cb: ResponseCb<Array<Varbind | Varbind[]>>): Session;
    trap(typeOrOid: number | string, varbinds: Varbind[], cb: (error: Error | null) => void): Session;
    inform(typeOrOid: number | string, varbinds: Varbind[], cb: (error: Error | null) => void): Session;
    close(): Session;
  }

  export function createSession(target: string, community: string, options?: SessionOptions): Session;
  export function createV3Session(target: string, user: User, options?: SessionOptions): Session;

  export interface ReceiverOptions {
    port?: number;
    address?: string | null;
    transport?: 'udp4' | 'udp6';
    disableAuthorization?: boolean;
    includeAuthentication?: boolean;
    engineID?: string;
  }
  export interface Authorizer {
    addCommunity(community: string): void;
    addUser(user: User): void;
  }
  export interface Notification {
    pdu: {
      type: number;
      id: number;
      varbinds: Varbind[];
      enterprise?: string;
      agentAddr?: string;
      generic?: number;
      specific?: number;
      upTime?: number;
      community?: string;
      user?: string;
      contextEngineID?: string;
    };
    rinfo: { address: string; port: number; family: string; size: number };
  }
  export interface Receiver {
    getAuthorizer(): Authorizer;
    close(cb?: () => void): void;
  }
  export function createReceiver(options: ReceiverOptions, cb: (error: Error | null, n?: Notification) => void): Receiver;

  export interface MibProvider {
    name: string;
    type: number;
    oid: string;
    scalarType?: number;
    maxAccess?: number;
    tableColumns?: Array<{ number: number; name: string; type: number; maxAccess?: number }>;
    tableIndex?: Array<{ columnName?: string; columnNumber?: number; implied?: boolean }>;
    handler?: (req: unknown) => void;
  }
  export interface Mib {
    registerProvider(p: MibProvider): void;
    setScalarValue(name: string, v: unknown): void;
    addTableRow(name: string, row: unknown[]): void;
    setTableSingleCell(name: string, column: number, index: unknown[], v: unknown): void;
  }
  export interface Agent {
    getMib(): Mib;
    getAuthorizer(): Authorizer;
    close(cb?: () => void): void;
  }
  export function createAgent(options: ReceiverOptions, cb: (error: Error | null, data?: unknown) => void, mib?: unknown): Agent;

  export const Version1: number;
  export const Version2c: number;
  export const Version3: number;
  export const ObjectType: Record<string, number> & Record<number, string>;
  export const ErrorStatus: Record<string, number> & Record<number, string>;
  export const PduType: Record<string, number> & Record<number, string>;
  export const TrapType: Record<string, number> & Record<number, string>;
  export const SecurityLevel: { noAuthNoPriv: number; authNoPriv: number; authPriv: number };
  export const AuthProtocols: { none: number; md5: number; sha: number; sha224: number; sha256: number; sha384: number; sha512: number };
  export const PrivProtocols: { none: number; des: number; aes: number; aes256b: number; aes256r: number };
  export const MibProviderType: { Scalar: number; Table: number };
  export const MaxAccess: Record<string, number>;
  export function isVarbindError(vb: Varbind): boolean;
  export function varbindError(vb: Varbind): string;

  export class RequestTimedOutError extends Error {}
  export class RequestFailedError extends Error {
    status: number;
  }
  export class ResponseInvalidError extends Error {
    code: number;
  }
  export const ResponseInvalidCode: Record<string, number> & Record<number, string>;

  const snmp: {
    createSession: typeof createSession;
    createV3Session: typeof createV3Session;
    createReceiver: typeof createReceiver;
    createAgent: typeof createAgent;
    Version1: number;
    Version2c: number;
    Version3: number;
    ObjectType: typeof ObjectType;
    ErrorStatus: typeof ErrorStatus;
    PduType: typeof PduType;
    TrapType: typeof TrapType;
    SecurityLevel: typeof SecurityLevel;
    AuthProtocols: typeof AuthProtocols;
    PrivProtocols: typeof PrivProtocols;
    MibProviderType: typeof MibProviderType;
    MaxAccess: typeof MaxAccess;
    isVarbindError: typeof isVarbindError;
    varbindError: typeof varbindError;
    RequestTimedOutError: typeof RequestTimedOutError;
    RequestFailedError: typeof RequestFailedError;
    ResponseInvalidError: typeof ResponseInvalidError;
    ResponseInvalidCode: typeof ResponseInvalidCode;
  };
  export default snmp;
}
