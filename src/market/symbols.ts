// The market modules' symbol table is the one in src/domain/symbols.ts (shared with the engine).
export { SYMBOL_INVALID, SYMBOL_TABLE_FULL, SymbolTable, type SymbolIds } from '../domain/symbols.js';
