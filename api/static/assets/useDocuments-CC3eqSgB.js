import{a as e}from"./rolldown-runtime-DoHqwKmD.js";import{a as t}from"./preload-helper-BGqbAlK5.js";import{_ as n,l as r,p as i}from"./app-Bw-NizLn.js";var a=e(t(),1);r(`
  fragment DocumentFields on Document {
    id
    title
    collection
    ownerId
    mediaType
    sizeBytes
    status
    revision
    chunks
    pages
    characters
    embeddingModel
    failureCode
    failureReason
    createdAt
    updatedAt
    position
  }
`);var o=r(`
  query Documents($collection: DocumentCollection, $first: Int!, $after: String, $afterPosition: Int) {
    documents(collection: $collection, first: $first, after: $after, afterPosition: $afterPosition) {
      nodes {
        ...DocumentFields
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`),s=r(`
  query DocumentById($id: ID!, $afterPosition: Int) {
    document(id: $id, afterPosition: $afterPosition) {
      ...DocumentFields
    }
  }
`),c=r(`
  mutation ReprocessDocument($input: DocumentIdInput!) {
    reprocessDocument(input: $input) {
      documentId
      position
    }
  }
`),l=r(`
  mutation DeleteDocument($input: DocumentIdInput!) {
    deleteDocument(input: $input) {
      documentId
      position
    }
  }
`),u=1e3,d=1.5,f=15e3;function p(e){return Math.min(f,Math.round(u*d**Math.max(0,e)))}var m=e=>e!==`PROCESSING`;function h(e){return e.filter(e=>!m(e.status)).map(e=>e.id).sort()}function g(e,t,n){let r=new Set(e);return t.some(e=>!r.has(e))?0:n}var _=20,v=null;function y(e){v=Math.max(e,v??0)}function b(){return v}function x(e){let[t,r]=(0,a.useState)([]),[c,l]=(0,a.useState)(null),[u,d]=(0,a.useState)(!1),[f,b]=(0,a.useState)(!0),[x,S]=(0,a.useState)(!1),[C,w]=(0,a.useState)(null),[T,E]=(0,a.useState)(null),D=(0,a.useRef)(0),O=(0,a.useCallback)(async t=>{let a=t===null?++D.current:D.current;b(!0);try{let{documents:i}=await n(o,{collection:e,first:_,after:t,afterPosition:v});if(a!==D.current)return;r(e=>{if(t===null)return i.nodes;let n=new Set(e.map(e=>e.id));return[...e,...i.nodes.filter(e=>!n.has(e.id))]}),l(i.pageInfo.hasNextPage?i.pageInfo.endCursor??null:null),d(i.pageInfo.hasNextPage),w(null),S(!0)}catch(e){a===D.current&&w(i(e))}finally{a===D.current&&b(!1)}},[e]);(0,a.useEffect)(()=>{O(null)},[O]);let k=(0,a.useCallback)(e=>(e!==void 0&&y(e),O(null)),[O]),A=(0,a.useCallback)(()=>c?O(c):Promise.resolve(),[O,c]),j=(0,a.useCallback)(e=>r(t=>t.map(t=>t.id===e.id?e:t)),[]),M=(0,a.useCallback)(e=>r(t=>t.filter(t=>t.id!==e)),[]),N=h(t).join(` `),[P,F]=(0,a.useState)(0),I=(0,a.useRef)(0),L=(0,a.useRef)([]);return(0,a.useEffect)(()=>{let e=N?N.split(` `):[];if(I.current=g(L.current,e,I.current),L.current=e,e.length===0)return;let t=!1,r=setTimeout(async()=>{for(let r of e)try{let{document:e}=await n(s,{id:r,afterPosition:v});if(t)return;j(e),m(e.status)&&E(e)}catch(e){if(t)return;i(e).code===`NOT_FOUND`&&M(r)}t||(I.current+=1,F(e=>e+1))},p(I.current));return()=>{t=!0,clearTimeout(r)}},[N,P,j,M]),{documents:t,loading:f,loaded:x,error:C,hasMore:u,loadMore:A,reload:k,replace:j,remove:M,settled:T}}export{s as a,l as i,y as n,o,x as r,c as s,b as t};