// The engine's symbol table is the one in src/domain/symbols.ts (shared with the market modules).
export { SymbolTable } from '../domain/symbols.js';
